using Gateway.Host;
using Microsoft.Extensions.Options;

try
{
    await using var app = GatewayApplication.Build(args);
    await app.RunAsync();
    return 0;
}
catch (OptionsValidationException ex)
{
    // Bad configuration: say which key, and stop (systemd: exit status 2 is not restarted).
    await Console.Error.WriteLineAsync("gateway: invalid configuration: " + string.Join("; ", ex.Failures));
    return 2;
}
catch (InvalidOperationException ex) when (ex.Message.Contains("configuration", StringComparison.OrdinalIgnoreCase) ||
                                           ex.Message.Contains("Storage:", StringComparison.Ordinal))
{
    await Console.Error.WriteLineAsync("gateway: invalid configuration: " + ex.Message);
    return 2;
}
