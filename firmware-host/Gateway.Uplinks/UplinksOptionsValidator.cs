using Microsoft.Extensions.Options;

namespace Gateway.Uplinks;

/// <summary>Checks every uplink entry; a failure names the key, e.g. <c>Uplinks:cloud:Endpoints:0</c>.</summary>
internal sealed class UplinksOptionsValidator : IValidateOptions<UplinksOptions>
{
    public ValidateOptionsResult Validate(string? name, UplinksOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        foreach (var (link, uplink) in options.Links)
        {
            var key = $"{UplinksOptions.Section}:{link}";
            if (Check(key, link, uplink) is { } failure)
            {
                return ValidateOptionsResult.Fail(failure);
            }
        }

        return ValidateOptionsResult.Success;
    }

    private static string? Check(string key, string link, UplinkOptions uplink)
    {
        if (link.Length == 0 || link.Contains('.', StringComparison.Ordinal) || link.Contains('/', StringComparison.Ordinal))
        {
            return $"{key}: an uplink name must be non-empty without '.' or '/'";
        }

        if (!string.Equals(uplink.Protocol, "mqtt", StringComparison.OrdinalIgnoreCase))
        {
            return $"{key}:Protocol '{uplink.Protocol}' is not supported (only 'mqtt' uplinks are available)";
        }

        if (uplink.Endpoints.Count == 0)
        {
            return $"{key}:Endpoints must list at least one broker, e.g. mqtt://broker.example.com:1883";
        }

        for (var i = 0; i < uplink.Endpoints.Count; i++)
        {
            if (!UplinkEndpoint.TryParse(uplink.Endpoints[i], out _))
            {
                return $"{key}:Endpoints:{i} '{uplink.Endpoints[i]}' is not an mqtt://host[:port] or mqtts://host[:port] address";
            }
        }

        if (uplink.ProtocolVersion is not ("5" or "5.0" or "3.1.1"))
        {
            return $"{key}:ProtocolVersion must be 5 or 3.1.1";
        }

        if (uplink.KeepAlive < TimeSpan.FromSeconds(1) || uplink.KeepAlive > TimeSpan.FromSeconds(65535))
        {
            return $"{key}:KeepAlive must be between 00:00:01 and 18:12:15";
        }

        if (uplink.ReconnectDelayMax < TimeSpan.FromMilliseconds(100) || uplink.ReconnectDelayMax > TimeSpan.FromHours(1))
        {
            return $"{key}:ReconnectDelayMax must be between 00:00:00.1 and 01:00:00";
        }

        if (uplink.ReturnToPrimaryInterval < TimeSpan.FromSeconds(1))
        {
            return $"{key}:ReturnToPrimaryInterval must be at least 00:00:01";
        }

        if (uplink.StallTimeout < TimeSpan.FromSeconds(1))
        {
            return $"{key}:StallTimeout must be at least 00:00:01";
        }

        if (uplink.MaxPacketSize is < 64 or > 268_435_455)
        {
            return $"{key}:MaxPacketSize must be between 64 and 268435455 bytes";
        }

        if (uplink.MaxInFlight is < 1 or > 65535)
        {
            return $"{key}:MaxInFlight must be between 1 and 65535";
        }

        if (uplink.DrainRate < 0)
        {
            return $"{key}:DrainRate must be 0 (no limit) or a number of messages per second";
        }

        if (uplink.Forward.Count == 0 && uplink.Downlink.Count == 0)
        {
            return $"{key}: needs at least one Forward or Downlink rule";
        }

        for (var i = 0; i < uplink.Forward.Count; i++)
        {
            var rule = uplink.Forward[i];
            if (!IsFilter(rule.Filter))
            {
                return $"{key}:Forward:{i}:Filter '{rule.Filter}' is not a valid MQTT topic filter";
            }

            if (rule.Qos is < 0 or > 1)
            {
                return $"{key}:Forward:{i}:Qos must be 0 or 1";
            }

            if (rule.Prefix.Contains('+', StringComparison.Ordinal) || rule.Prefix.Contains('#', StringComparison.Ordinal))
            {
                return $"{key}:Forward:{i}:Prefix must not contain wildcards";
            }
        }

        for (var i = 0; i < uplink.Downlink.Count; i++)
        {
            var rule = uplink.Downlink[i];
            if (!IsFilter(rule.Filter))
            {
                return $"{key}:Downlink:{i}:Filter '{rule.Filter}' is not a valid MQTT topic filter";
            }

            if (rule.Qos is < 0 or > 1)
            {
                return $"{key}:Downlink:{i}:Qos must be 0 or 1";
            }
        }

        var buffer = uplink.Buffer;
        if (buffer.MaxMessages < 1)
        {
            return $"{key}:Buffer:MaxMessages must be at least 1";
        }

        if (buffer.MaxBytes < 1024)
        {
            return $"{key}:Buffer:MaxBytes must be at least 1024";
        }

        if (buffer.MaxAge < TimeSpan.Zero)
        {
            return $"{key}:Buffer:MaxAge must not be negative";
        }

        if (buffer.Overflow is not ("drop-head" or "reject-publish"))
        {
            return $"{key}:Buffer:Overflow must be drop-head or reject-publish";
        }

        var tls = uplink.Tls;
        foreach (var (file, path) in (ReadOnlySpan<(string, string?)>)[("CaFile", tls.CaFile), ("CertificateFile", tls.CertificateFile), ("KeyFile", tls.KeyFile)])
        {
            if (!string.IsNullOrEmpty(path) && !File.Exists(path))
            {
                return $"{key}:Tls:{file} '{path}' does not exist";
            }
        }

        if (string.IsNullOrEmpty(tls.CertificateFile) != string.IsNullOrEmpty(tls.KeyFile))
        {
            return $"{key}:Tls:CertificateFile and {key}:Tls:KeyFile go together";
        }

        return null;
    }

    private static bool IsFilter(string filter)
    {
        if (string.IsNullOrEmpty(filter))
        {
            return false;
        }

        var levels = filter.Split('/');
        for (var i = 0; i < levels.Length; i++)
        {
            var level = levels[i];
            if ((level.Contains('#', StringComparison.Ordinal) && (level != "#" || i != levels.Length - 1)) ||
                (level.Contains('+', StringComparison.Ordinal) && level != "+"))
            {
                return false;
            }
        }

        return true;
    }
}
