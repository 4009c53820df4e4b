namespace Gateway.Uplinks;

/// <summary>A broker address from the endpoint list: what a sink connects to, and what the forwarder fails over between.</summary>
internal readonly record struct UplinkEndpoint(string Host, int Port, bool Tls)
{
    public static bool TryParse(string text, out UplinkEndpoint endpoint)
    {
        endpoint = default;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host) ||
            (uri.AbsolutePath.Length > 1) || uri.Scheme is not ("mqtt" or "mqtts" or "tcp" or "ssl"))
        {
            return false;
        }

        var tls = uri.Scheme is "mqtts" or "ssl";
        endpoint = new UplinkEndpoint(uri.Host, uri.IsDefaultPort || uri.Port <= 0 ? (tls ? 8883 : 1883) : uri.Port, tls);
        return true;
    }

    public override string ToString() => $"{(Tls ? "mqtts" : "mqtt")}://{Host}:{Port}";
}
