using Gateway.Gpio;
using Gateway.Storage;
using Gateway.Uplinks;
using Microsoft.Extensions.Options;

namespace Gateway.Host;

/// <summary>Turns start-up failures caused by configuration into one line that names the key.</summary>
internal static class ConfigurationError
{
    public static string? Describe(Exception exception)
    {
        switch (exception)
        {
            case OptionsValidationException validation:
                // Failures may start with just the member name.
                var section = SectionOf(validation.OptionsType);
                return string.Join("; ", validation.Failures.Select(f => Qualify(section, f)));
            case InvalidOperationException { InnerException: not null } binding when binding.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal):
                // "Failed to convert configuration value 'abc' at 'Mqtt:Port' to type 'System.Int32'."
                return binding.Message;
            default:
                return exception.InnerException is { } inner ? Describe(inner) : null;
        }
    }

    // The sections of the validated options classes, matched by type: a trimmed or native AOT
    // build keeps no metadata to look their Section constants up by reflection.
    private static string? SectionOf(Type options) =>
        options == typeof(HttpOptions) ? HttpOptions.Section
        : options == typeof(StorageOptions) ? StorageOptions.Section
        : options == typeof(GpioOptions) ? GpioOptions.Section
        : options == typeof(UplinksOptions) ? UplinksOptions.Section
        : options == typeof(MemoryOptions) ? MemoryOptions.Section
        : ProtocolRegistry.SectionOf(options, GatewayProtocols.All);

    // "MaxPacketSize: The field ..." becomes "Mqtt:MaxPacketSize: The field ..."; a failure whose
    // text already names its key ("Name: Gpio:Pins:N:Name is required") keeps just that text.
    private static string Qualify(string? section, string failure)
    {
        if (section is null || failure.StartsWith(section + ":", StringComparison.Ordinal))
        {
            return failure;
        }

        var colon = failure.IndexOf(": ", StringComparison.Ordinal);
        if (colon > 0 && failure.AsSpan(colon + 2).StartsWith(section + ":", StringComparison.Ordinal))
        {
            return failure[(colon + 2)..];
        }

        return $"{section}:{failure}";
    }
}
