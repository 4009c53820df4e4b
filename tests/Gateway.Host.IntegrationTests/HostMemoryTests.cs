using System.Globalization;
using System.Text.RegularExpressions;

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

    [Fact]
    public async Task A_qos0_flood_to_fifty_offline_sessions_stays_within_the_memory_budget_under_a_small_heap_cap()
    {
        using var directory = new TempDirectory();
        // A 96 MB heap (the variable is read as hexadecimal): a quarter of it is the budget, and
        // 50 sessions that each queued every message would need several times the heap.
        await using var gateway = HostProcessTests.StartGatewayProcess(
            ["--Mqtt:BindAddress=127.0.0.1", "--Http:BindAddress=127.0.0.1", "--Mqtt:Port=0", "--Http:Port=0", $"--Storage:DataDirectory={directory.Path}/data"],
            directory.Path,
            new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "6000000" });
        var port = await HostProcessTests.MqttPortOfAsync(gateway);
        Assert.Contains("GC heap limit 96 MB, memory budget 24 MB", gateway.Output, StringComparison.Ordinal);
        for (var s = 0; s < 50; s++)
        {
            await using var away = await MqttTestClient.ConnectAsync(port, $"away-{s}", MQTTnet.Formatter.MqttProtocolVersion.V311, cleanSession: false);
            await away.SubscribeAsync("#", MQTTnet.Protocol.MqttQualityOfServiceLevel.AtMostOnce);
        }

        await using var watcher = await MqttTestClient.ConnectAsync(port);
        await watcher.SubscribeAsync("check/#");
        await using (var flooder = await MqttTestClient.ConnectAsync(port, version: MQTTnet.Formatter.MqttProtocolVersion.V311))
        {
            var payload = new string('f', 100);
            for (var i = 0; i < 100_000; i++)
            {
                await flooder.PublishAsync("flood/" + (i % 16).ToString(CultureInfo.InvariantCulture), payload, MQTTnet.Protocol.MqttQualityOfServiceLevel.AtMostOnce);
            }

            // Published on the same connection after the flood, so it is routed after all of it.
            Assert.True((await flooder.PublishAsync("check/after", "alive")).IsSuccess);
        }

        Assert.Equal("alive", MQTTnet.MqttApplicationMessageExtensions.ConvertPayloadToString(await watcher.ReceiveAsync()));
        await gateway.WaitForOutputAsync("Memory budget of 24 MB full: a message for MQTT session away-");
        using var http = new HttpClient();
        var httpPort = int.Parse(HostProcessTests.HttpListeningLine().Match(gateway.Output).Groups[1].Value, CultureInfo.InvariantCulture);
        var metrics = await http.GetStringAsync(new Uri($"http://127.0.0.1:{httpPort}/metrics"));
        Assert.Matches(@"\ngateway_mqtt_messages_dropped_total\{reason=""memory-budget""\} [1-9][0-9]*\n", metrics);
        Assert.Contains("gateway_memory_budget_bytes 25165824\n", metrics, StringComparison.Ordinal);
        var used = long.Parse(Regex.Match(metrics, @"\ngateway_memory_budget_used_bytes (\d+)\n").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.InRange(used, 1, (12 * 1024 * 1024) + (64 * 1024)); // QoS 0 takes half the budget at most
        Assert.False(gateway.Exited.IsCompleted, "the gateway exited:\n" + gateway.Output);
        Assert.DoesNotContain("OutOfMemory", gateway.Output, StringComparison.Ordinal);
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
