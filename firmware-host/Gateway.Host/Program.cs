using Gateway.Host;
using Gateway.Protocols;

GatewayEndpoints? endpoints = null;
try
{
    await using var app = GatewayApplication.Build(args);
    endpoints = app.Services.GetRequiredService<GatewayEndpoints>();
    await app.RunAsync();
    return 0;
}
catch (Exception ex) when (ConfigurationError.Describe(ex) is { } message)
{
    // Bad configuration: say which key, and stop. Exit status 2 tells systemd not to restart.
    await Console.Error.WriteLineAsync("gateway: invalid configuration: " + message);
    return 2;
}
catch (Exception ex) when (StartupError.Describe(ex, endpoints) is { } message)
{
    // Something else holds a port or the data directory: say which, and let systemd retry.
    await Console.Error.WriteLineAsync("gateway: cannot start: " + message);
    return 1;
}
