namespace Gateway.Host.IntegrationTests;

/// <summary>The gateway under a (simulated) systemd with WatchdogSec set.</summary>
[Trait("Category", "Integration")]
public sealed class WatchdogTests
{
    [Fact]
    public async Task Watchdog_is_fed_only_while_the_gateway_is_healthy()
    {
        using var directory = new TempDirectory();
        using var notify = new NotifySocket();
        var data = Path.Combine(directory.Path, "data");
        await using var gateway = HostProcessTests.StartGatewayProcess(
            ["--Mqtt:Port=0", "--Mqtt:BindAddress=127.0.0.1", "--Http:Port=0", "--Http:BindAddress=127.0.0.1", $"--Storage:DataDirectory={data}"],
            directory.Path,
            new Dictionary<string, string>
            {
                ["NOTIFY_SOCKET"] = notify.Path,
                ["INVOCATION_ID"] = "watchdog-test", // what systemd sets for a unit
                ["WATCHDOG_USEC"] = "200000",
            });

        await notify.UntilAsync("READY=1");
        await notify.UntilAsync("STATUS=healthy");
        await notify.UntilAsync("WATCHDOG=1");
        await notify.UntilAsync("WATCHDOG=1");

        // Break the data directory: replace it with a plain file.
        Directory.Delete(data, recursive: true);
        await File.WriteAllTextAsync(data, "not a directory");
        await notify.UntilAsync("STATUS=unhealthy");

        // Mend it: the gateway reports healthy again, and fed the watchdog not once in between.
        File.Delete(data);
        Directory.CreateDirectory(data);
        var whileUnhealthy = await notify.UntilAsync("STATUS=healthy");
        Assert.DoesNotContain(whileUnhealthy, m => m.Contains("WATCHDOG=1", StringComparison.Ordinal));
        await notify.UntilAsync("WATCHDOG=1");
    }
}
