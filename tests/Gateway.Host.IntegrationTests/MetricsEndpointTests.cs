using System.Globalization;
using Gateway.Protocols.Mqtt;
using Gateway.Routing;
using Gateway.TestKit;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.Host.IntegrationTests;

/// <summary>/metrics as Prometheus scrapes it, with a real mosquitto as the uplink's cloud broker.</summary>
[Trait("Category", "Integration")]
public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task Metrics_show_an_uplink_forwarding_then_buffering_when_its_broker_goes()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var gateway = await TestGateway.StartAsync(
            $"--Uplinks:cloud:Endpoints:0={broker.Url}",
            "--Uplinks:cloud:Forward:0:Filter=sensors/#",
            "--Uplinks:cloud:ReconnectDelayMax=00:00:01");
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.HttpPort}") };
        var queue = gateway.Services.GetRequiredService<MessageRouter>().GetQueue("uplink.cloud");

        for (var i = 1; i <= 50; i++)
        {
            await sensor.PublishAsync("sensors/boiler/temp", i.ToString(CultureInfo.InvariantCulture));
        }

        await WaitFor.ConditionAsync(() => queue.GetStatistics() is { Acknowledged: 50, Unacknowledged: 0 }, "the broker to confirm all 50");
        var forwarding = await ScrapeAsync(http);
        Assert.Equal("50", forwarding.Samples["gateway_uplink_forwarded_total{uplink=\"cloud\"}"]);
        Assert.Equal("1", forwarding.Samples["gateway_uplink_state{uplink=\"cloud\"}"]); // connected
        Assert.Equal("0", forwarding.Samples["gateway_uplink_backlog_messages{uplink=\"cloud\"}"]);
        Assert.Equal("0", forwarding.Samples["gateway_uplink_dropped_total{uplink=\"cloud\",reason=\"buffer-full\"}"]);
        Assert.Contains("# TYPE gateway_uplink_forwarded_total counter", forwarding.Text, StringComparison.Ordinal);
        Assert.Contains("# TYPE gateway_uplink_state gauge", forwarding.Text, StringComparison.Ordinal);
        Assert.True(double.Parse(forwarding.Samples["gateway_uplink_last_confirmed_age_seconds{uplink=\"cloud\"}"], CultureInfo.InvariantCulture) >= 0);
        // Kestrel owns the MQTT listener: the sensor is one connection on its port.
        Assert.Equal("1", Assert.Single(forwarding.Samples, s => s.Key.StartsWith("kestrel_active_connections{", StringComparison.Ordinal) && s.Key.Contains($"server_port=\"{gateway.MqttPort}\"", StringComparison.Ordinal)).Value);
        Assert.True(long.Parse(forwarding.Samples["dotnet_process_memory_working_set_bytes"], CultureInfo.InvariantCulture) > 0);
        Assert.Equal("0", forwarding.Samples["gateway_store_low_disk"]);
        Assert.True(long.Parse(forwarding.Samples["gateway_store_commits_total"], CultureInfo.InvariantCulture) > 0); // the 50, on disk before their PUBACKs

        await broker.StopAsync();
        for (var i = 51; i <= 70; i++)
        {
            await sensor.PublishAsync("sensors/boiler/temp", i.ToString(CultureInfo.InvariantCulture)); // on the gateway's disk
        }

        await WaitFor.ConditionAsync(() => gateway.Services.GetRequiredService<GatewayStatus>().GetLinkState("cloud") == LinkState.Buffering, "the uplink to report buffering");
        var buffering = await ScrapeAsync(http);
        Assert.Equal("2", buffering.Samples["gateway_uplink_state{uplink=\"cloud\"}"]);
        Assert.Equal("20", buffering.Samples["gateway_uplink_backlog_messages{uplink=\"cloud\"}"]);
        Assert.Equal("50", buffering.Samples["gateway_uplink_forwarded_total{uplink=\"cloud\"}"]);
    }

    [Fact]
    public async Task Metrics_count_mqtt_clients_and_messages_received_sent_refused_and_dropped()
    {
        // Nothing listens on port 1: the uplink buffers, and its buffer takes 5 before it refuses.
        await using var gateway = await TestGateway.StartAsync(
            "--Mqtt:MaxPendingMessagesPerClient=3",
            "--Uplinks:cloud:Endpoints:0=mqtt://127.0.0.1:1",
            "--Uplinks:cloud:Forward:0:Filter=sensors/#",
            "--Uplinks:cloud:Buffer:MaxMessages=5",
            "--Uplinks:cloud:Buffer:Overflow=reject-publish");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.HttpPort}") };
        await using var publisher = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await using (var subscriber = await MqttTestClient.ConnectAsync(gateway.MqttPort, "metrics-subscriber", cleanSession: false))
        {
            await subscriber.SubscribeAsync("news/#");
            for (var i = 1; i <= 4; i++)
            {
                await publisher.PublishAsync("news/today", i.ToString(CultureInfo.InvariantCulture));
                await subscriber.ReceiveAsync();
            }

            Assert.Equal("2", (await ScrapeAsync(http)).Samples["gateway_mqtt_clients"]);
        }

        // The subscriber's session outlives it and queues 3 at most: of 5 more, the 2 oldest go.
        var adapter = gateway.Services.GetRequiredService<MqttAdapter>();
        await WaitFor.ConditionAsync(() => adapter.ConnectedClients == 1, "the gateway to see the subscriber go");
        for (var i = 5; i <= 9; i++)
        {
            await publisher.PublishAsync("news/today", i.ToString(CultureInfo.InvariantCulture));
        }

        var refused = 0;
        for (var i = 1; i <= 7; i++)
        {
            var result = await publisher.PublishAsync("sensors/door", i.ToString(CultureInfo.InvariantCulture));
            refused += result.ReasonCode == MQTTnet.MqttClientPublishReasonCode.QuotaExceeded ? 1 : 0;
        }

        await WaitFor.ConditionAsync(() => adapter.Counters.Dropped == 2, "the offline session's queue to overflow");
        var scrape = await ScrapeAsync(http);
        Assert.Equal(2, refused);
        Assert.Equal("1", scrape.Samples["gateway_mqtt_clients"]);
        Assert.Equal("16", scrape.Samples["gateway_mqtt_messages_received_total"]);
        Assert.Equal("4", scrape.Samples["gateway_mqtt_messages_sent_total"]);
        Assert.Equal("2", scrape.Samples["gateway_mqtt_messages_refused_total"]);
        Assert.Equal("2", scrape.Samples["gateway_mqtt_messages_dropped_total{reason=\"session-queue-full\"}"]);
        Assert.Equal("0", scrape.Samples["gateway_mqtt_messages_dropped_total{reason=\"memory-budget\"}"]);
        Assert.Equal("2", scrape.Samples["gateway_uplink_dropped_total{uplink=\"cloud\",reason=\"rejected-publish\"}"]);
    }

    [Fact]
    public async Task Metrics_show_the_store_refusing_messages_while_the_disk_is_under_its_reserve()
    {
        // A reserve larger than what the disk has free: the store refuses appends from the start.
        var freeMegabytes = new DriveInfo(Path.GetTempPath()).AvailableFreeSpace / (1024 * 1024);
        await using var gateway = await TestGateway.StartAsync(
            $"--Storage:MinFreeMegabytes={Math.Min(1_048_576, freeMegabytes + 1024)}",
            "--Uplinks:cloud:Endpoints:0=mqtt://127.0.0.1:1",
            "--Uplinks:cloud:Forward:0:Filter=sensors/#");
        gateway.ExpectErrors(e => e.EventId.Id == 4010); // the critical "disk low" line is the point
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.HttpPort}") };

        for (var i = 1; i <= 3; i++)
        {
            var result = await sensor.PublishAsync("sensors/door", i.ToString(CultureInfo.InvariantCulture));
            Assert.Equal(MQTTnet.MqttClientPublishReasonCode.QuotaExceeded, result.ReasonCode);
        }

        var scrape = await ScrapeAsync(http);
        Assert.Equal("1", scrape.Samples["gateway_store_low_disk"]);
        Assert.Equal("3", scrape.Samples["gateway_store_refused_low_disk_total"]);
        Assert.Equal("3", scrape.Samples["gateway_mqtt_messages_refused_total"]);
        Assert.Equal("0", scrape.Samples["gateway_uplink_backlog_messages{uplink=\"cloud\"}"]);
        Assert.True(long.Parse(scrape.Samples["gateway_store_size_bytes"], CultureInfo.InvariantCulture) > 0);
    }

    [Fact]
    public async Task Metrics_are_served_as_prometheus_text_version_0_0_4()
    {
        await using var gateway = await TestGateway.StartAsync();
        using var http = new HttpClient();

        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{gateway.HttpPort}/metrics"));

        response.EnsureSuccessStatusCode();
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        var text = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("gateway_uplink_", text, StringComparison.Ordinal); // no uplinks configured
        Assert.Contains("# TYPE dotnet_process_cpu_time_seconds_total counter", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE dotnet_thread_pool_thread_count gauge", text, StringComparison.Ordinal); // the runtime calls it a counter; it goes down too
    }

    private static async Task<Scrape> ScrapeAsync(HttpClient http)
    {
        var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        var samples = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var space = line.LastIndexOf(' ');
            samples.Add(line[..space], line[(space + 1)..]); // a series appears once
        }

        return new Scrape(text, samples);
    }

    private sealed record Scrape(string Text, Dictionary<string, string> Samples);
}
