using Gateway.Host;

try
{
    await using var app = GatewayApplication.Build(args);
    await app.RunAsync();
    return 0;
}
catch (Exception ex) when (ConfigurationError.Describe(ex) is { } message)
{
    // Bad configuration: say which key, and stop. Exit status 2 tells systemd not to restart.
    await Console.Error.WriteLineAsync("gateway: invalid configuration: " + message);
    return 2;
}
