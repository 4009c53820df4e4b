using System.Globalization;
using Gateway.Routing;
using Microsoft.Extensions.DependencyInjection;
using static Gateway.Interop.Tests.InteropTools;

namespace Gateway.Interop.Tests;

/// <summary>The Prometheus Python client's parser (Debian python3-prometheus-client) reads /metrics.</summary>
[Trait("Category", "Interop")]
public sealed class PrometheusClientTests
{
    [Fact]
    public async Task Prometheus_parser_reads_every_metric_with_its_type_and_labels()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var gateway = await TestGateway.StartAsync(
            $"--Uplinks:cloud:Endpoints:0={broker.Url}",
            "--Uplinks:cloud:Forward:0:Filter=sensors/#");
        await using (var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort))
        {
            for (var i = 1; i <= 10; i++)
            {
                await sensor.PublishAsync("sensors/door", i.ToString(CultureInfo.InvariantCulture));
            }
        }

        var queue = gateway.Services.GetRequiredService<MessageRouter>().GetQueue("uplink.cloud");
        await WaitFor.ConditionAsync(() => queue.GetStatistics() is { Acknowledged: 10, Unacknowledged: 0 }, "the broker to confirm all 10");

        await using var scrape = ExternalProcess.Start(Python, Args(Script("prometheus_scrape.py"), $"http://127.0.0.1:{gateway.HttpPort}/metrics"));

        Assert.True(await scrape.WaitForExitAsync() == 0, scrape.Output);
        var lines = scrape.Output.Split('\n', StringSplitOptions.TrimEntries);
        Assert.Contains("CONTENT-TYPE text/plain; version=0.0.4; charset=utf-8", lines);
        Assert.Contains("FAMILY gateway_uplink_forwarded counter", lines); // the parser takes _total off a counter's name
        Assert.Contains("SAMPLE gateway_uplink_forwarded_total uplink=cloud 10.0", lines);
        Assert.Contains("FAMILY gateway_uplink_state gauge", lines);
        Assert.Contains("SAMPLE gateway_uplink_state uplink=cloud 1.0", lines);
        Assert.Contains("SAMPLE gateway_uplink_dropped_total reason=expired,uplink=cloud 0.0", lines);
        Assert.Contains("FAMILY kestrel_connection_duration_seconds summary", lines); // the sensor's closed connection
        Assert.Contains(lines, l => l.StartsWith("SAMPLE kestrel_connection_duration_seconds_count ", StringComparison.Ordinal) && l.Contains($"server_port={gateway.MqttPort}", StringComparison.Ordinal) && l.EndsWith(" 1.0", StringComparison.Ordinal));
        Assert.Contains("FAMILY dotnet_process_memory_working_set_bytes gauge", lines);
    }
}
