using System.Reflection;
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
                // Options classes declare their section; failures start with the member name.
                var section = validation.OptionsType.GetField("Section", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as string;
                return string.Join("; ", validation.Failures.Select(f => Qualify(section, f)));
            case InvalidOperationException { InnerException: not null } binding when binding.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal):
                // "Failed to convert configuration value 'abc' at 'Mqtt:Port' to type 'System.Int32'."
                return binding.Message;
            case InvalidOperationException storage when storage.Message.StartsWith("Storage:", StringComparison.Ordinal):
                return storage.Message;
            default:
                return exception.InnerException is { } inner ? Describe(inner) : null;
        }
    }

    private static string Qualify(string? section, string failure) =>
        section is null || failure.StartsWith(section + ":", StringComparison.Ordinal) ? failure : $"{section}:{failure}";
}
