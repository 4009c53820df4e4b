using System.Globalization;

namespace Gateway.Host.IntegrationTests;

/// <summary>The gateway's resident memory as <c>top</c> shows it, around a burst of traffic.</summary>
[Trait("Category", "Integration")]
public sealed class HostMemoryTests
{
    [Fact]
    public async Task Memory_a_burst_grew_into_is_given_back_once_traffic_stops()
    {
        using var directory = new TempDirectory();
        // The cloud is unreachable: every message goes to disk and stays there, as in an outage.
        await using var gateway = HostProcessTests.StartGateway(
            directory.Path, "--Mqtt:Port=0", "--Http:Port=0", $"--Storage:DataDirectory={directory.Path}/data",
            "--Uplinks:cloud:Endpoints:0=mqtt://127.0.0.1:1", "--Uplinks:cloud:Forward:0:Filter=sensors/#");
        await using var sensor = await MqttTestClient.ConnectAsync(await HostProcessTests.MqttPortOfAsync(gateway));
        var idle = ResidentMegabytes(gateway.Id);

        var payload = new string('x', 1024);
        var inFlight = new List<Task<MQTTnet.MqttClientPublishResult>>(64);
        for (var i = 0; i < 100_000; i++)
        {
            inFlight.Add(sensor.PublishAsync("sensors/boiler/temp", payload));
            if (inFlight.Count == inFlight.Capacity)
            {
                foreach (var publish in inFlight)
                {
                    Assert.True((await publish).IsSuccess);
                }

                inFlight.Clear();
            }
        }

        var afterBurst = ResidentMegabytes(gateway.Id);
        await WaitFor.ConditionAsync(
            () => ResidentMegabytes(gateway.Id) < idle + 30,
            $"resident memory within 30 MB of idle ({idle} MB) with 100 MB buffered on disk; {afterBurst} MB right after the burst",
            TimeSpan.FromSeconds(60));
    }

    private static int ResidentMegabytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return int.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) / 1024;
            }
        }

        throw new InvalidOperationException($"no VmRSS for process {pid}");
    }
}
