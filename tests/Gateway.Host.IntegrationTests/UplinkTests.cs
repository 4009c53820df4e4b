using System.Diagnostics;
using System.Diagnostics.Metrics;
using Gateway.Routing;
using Gateway.TestKit;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using Xunit.Abstractions;

namespace Gateway.Host.IntegrationTests;

/// <summary>
/// Store-and-forward MQTT uplinks against a real mosquitto as the cloud broker. Sensors publish
/// numbered QoS 1 messages; mosquitto_sub at the cloud counts every number: none lost,
/// duplicates within the in-flight window, first arrivals in order.
/// </summary>
[Trait("Category", "Integration")]
public sealed class UplinkTests(ITestOutputHelper output)
{
    private const int Window = 512; // UplinkOptions.MaxInFlight default

    private static string[] Uplink(params string[] endpoints)
    {
        var args = new List<string>
        {
            "--Uplinks:cloud:Forward:0:Filter=sensors/#",
            "--Uplinks:cloud:Forward:0:Prefix=cloud/",
            "--Uplinks:cloud:ReconnectDelayMax=00:00:01",
        };
        for (var i = 0; i < endpoints.Length; i++)
        {
            args.Add($"--Uplinks:cloud:Endpoints:{i}={endpoints[i]}");
        }

        return [.. args];
    }

    private static async Task PublishAsync(MqttTestClient sensor, int from, int to)
    {
        for (var i = from; i <= to; i++)
        {
            var result = await sensor.PublishAsync("sensors/boiler/temp", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(result.IsSuccess, $"message {i}: {result.ReasonCode}");
        }
    }

    private static MessageQueue UplinkQueue(TestGateway gateway) => gateway.Services.GetRequiredService<MessageRouter>().GetQueue("uplink.cloud");

    private static LinkState State(TestGateway gateway) => gateway.Services.GetRequiredService<GatewayStatus>().GetLinkState("cloud");

    // What an operator's metrics exporter reads now: this gateway's Gateway.Uplinks instruments
    // (each test gateway has its own meter factory) for one uplink, keyed "name" or "name{reason=...}".
    private static Dictionary<string, long> UplinkMetrics(TestGateway gateway, string uplink = "cloud")
    {
        var meters = gateway.Services.GetRequiredService<IMeterFactory>();
        var values = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == meters && instrument.Meter.Name == "Gateway.Uplinks")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string? reason = null;
            string? name = null;
            foreach (var tag in tags)
            {
                reason = tag.Key == "reason" ? tag.Value as string : reason;
                name = tag.Key == "uplink" ? tag.Value as string : name;
            }

            if (name == uplink)
            {
                values[reason is null ? instrument.Name : $"{instrument.Name}{{reason={reason}}}"] = value;
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return values;
    }

    [Fact]
    public async Task Cloud_broker_stopped_mid_stream_and_restarted_loses_nothing()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var cloud = await CloudSubscriber.StartAsync(broker, "cloud/#");
        await using var gateway = await TestGateway.StartAsync(Uplink(broker.Url));
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);

        await PublishAsync(sensor, 1, 1000);
        await broker.StopAsync();
        await PublishAsync(sensor, 1001, 2000); // acknowledged by the gateway: on its disk
        await WaitFor.ConditionAsync(() => State(gateway) == LinkState.Buffering, "the uplink to report buffering");
        await broker.StartAsync();
        await PublishAsync(sensor, 2001, 3000);

        // The cloud subscriber's persistent session survives the broker's restart, so what the
        // uplink delivers before the subscriber is back waits for it at the broker.
        await WaitFor.ConditionAsync(() => UplinkQueue(gateway).GetStatistics() is { Ready: 0, Unacknowledged: 0, Acknowledged: 3000 }, "the broker to confirm all 3000");
        await cloud.WaitForNumbersAsync(Enumerable.Range(1, 3000));
        cloud.AssertComplete(Enumerable.Range(1, 3000), maxDuplicates: Window);
        await WaitFor.ConditionAsync(() => UplinkQueue(gateway).GetStatistics() is { Ready: 0, Unacknowledged: 0 }, "the buffer to empty");
    }

    [Theory]
    [InlineData("5")]
    [InlineData("3.1.1")]
    public async Task Forward_rules_at_qos_0_and_1_deliver_every_message_once_whatever_properties_it_carries(string protocolVersion)
    {
        // One stream through two rules, QoS 0 (done once written) and 1 (confirmed by PUBACK),
        // each message with MQTT 5 properties. An MQTT 3.1.1 uplink has no properties to send
        // them in: it forwards the messages without them.
        await using var broker = await MosquittoBroker.StartAsync();
        await using var cloud = await CloudSubscriber.StartAsync(broker, "cloud/#");
        await using var gateway = await TestGateway.StartAsync(
        [
            "--Uplinks:cloud:Forward:0:Filter=sensors/q0/#", "--Uplinks:cloud:Forward:0:Prefix=cloud/", "--Uplinks:cloud:Forward:0:Qos=0",
            "--Uplinks:cloud:Forward:1:Filter=sensors/#", "--Uplinks:cloud:Forward:1:Prefix=cloud/",
            $"--Uplinks:cloud:ProtocolVersion={protocolVersion}", $"--Uplinks:cloud:Endpoints:0={broker.Url}",
        ]);
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);

        for (var i = 1; i <= 300; i++)
        {
            var message = new MqttApplicationMessageBuilder()
                .WithTopic(i % 2 == 0 ? "sensors/q0/temp" : "sensors/q1/temp")
                .WithPayload(i.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .WithQualityOfServiceLevel(MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce)
                .WithContentType("text/plain")
                .WithUserProperty("site", "boiler-room"u8.ToArray())
                .Build();
            Assert.True((await sensor.PublishAsync(message)).IsSuccess, $"message {i}");
        }

        await cloud.WaitForNumbersAsync(Enumerable.Range(1, 300));
        await WaitFor.ConditionAsync(() => UplinkQueue(gateway).GetStatistics() is { Ready: 0, Unacknowledged: 0, Acknowledged: 300 }, "the broker to confirm all 300");
        cloud.AssertComplete(Enumerable.Range(1, 300), maxDuplicates: 0);
        Assert.DoesNotContain(gateway.Logs.Entries, e => e.EventId.Id is 5003 or 5011); // one session throughout: never lost, never failed
    }

    [Fact]
    public async Task A_blackholed_link_is_detected_by_keep_alive_reconnected_and_drained()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        await using var cloud = await CloudSubscriber.StartAsync(broker, "cloud/#");
        await using var gateway = await TestGateway.StartAsync([.. Uplink(proxy.Url), "--Uplinks:cloud:KeepAlive=00:00:02"]);
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await PublishAsync(sensor, 1, 200);
        await cloud.WaitForNumbersAsync(Enumerable.Range(1, 200));

        proxy.Mode = ProxyMode.Blackhole; // no FIN, no RST: bytes just stop
        var blackholed = Stopwatch.StartNew();
        await PublishAsync(sensor, 201, 400);
        await WaitFor.ConditionAsync(() => gateway.Logs.Entries.Any(e => e.EventId.Id == 5003), "the uplink to declare the link lost");
        output.WriteLine($"blackhole detected after {blackholed.Elapsed.TotalSeconds:F2} s (keep-alive 2 s): {gateway.Logs.Entries.First(e => e.EventId.Id == 5003).Message}");

        proxy.Mode = ProxyMode.Forward; // the next connection gets through
        await cloud.WaitForNumbersAsync(Enumerable.Range(1, 400));
        cloud.AssertComplete(Enumerable.Range(1, 400), maxDuplicates: Window);
    }

    [Fact]
    public async Task A_broker_that_withholds_pubacks_makes_the_link_stalled_and_nothing_is_deleted()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var proxy = new TcpProxy(broker.Port) { Mode = ProxyMode.DropPubacks };
        await using var cloud = await CloudSubscriber.StartAsync(broker, "cloud/#");
        await using var gateway = await TestGateway.StartAsync([.. Uplink(proxy.Url), "--Uplinks:cloud:StallTimeout=00:00:02"]);
        var states = new List<LinkState>();
        gateway.Services.GetRequiredService<GatewayStatus>().LinkStateChanged += (_, state) =>
        {
            lock (states)
            {
                states.Add(state);
            }
        };
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);

        await PublishAsync(sensor, 1, 50);
        await WaitFor.ConditionAsync(() => State(gateway) == LinkState.Stalled, "the uplink to report stalled");
        Assert.Contains(gateway.Logs.Entries, e => e.EventId.Id == 5005);
        var statistics = UplinkQueue(gateway).GetStatistics();
        Assert.Equal(50, statistics.Ready + statistics.Unacknowledged); // sent (the cloud has them), never confirmed, so kept
        Assert.Equal(0, statistics.Acknowledged);

        proxy.Mode = ProxyMode.Forward;
        await WaitFor.ConditionAsync(() => UplinkQueue(gateway).GetStatistics() is { Ready: 0, Unacknowledged: 0 }, "the buffer to empty once PUBACKs flow");
        cloud.AssertComplete(Enumerable.Range(1, 50), maxDuplicates: 50 * 4);
        await WaitFor.ConditionAsync(() => State(gateway) == LinkState.Connected, "the uplink to report connected");
    }

    [Fact]
    public async Task The_uplink_never_has_more_publishes_unconfirmed_than_the_cloud_grants()
    {
        // mosquitto grants an MQTT 5 client its max_inflight_messages as Receive Maximum; the
        // proxy counts the uplink's unconfirmed publishes from the packets passing through it.
        await using var broker = await MosquittoBroker.StartAsync(true, "max_inflight_messages 5");
        await using var cloud = await CloudSubscriber.StartAsync(broker, "cloud/#");
        await using var link = new TcpProxy(broker.Port) { Mode = ProxyMode.Refuse };
        await using var gateway = await TestGateway.StartAsync(Uplink(link.Url));
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);

        await PublishAsync(sensor, 1, 300); // a backlog: the uplink has more to send than it may
        link.Mode = ProxyMode.Forward;
        await cloud.WaitForNumbersAsync(Enumerable.Range(1, 300));

        Assert.Equal(5, link.GrantedReceiveMaximum);
        Assert.InRange(link.MaxInFlight, 2, 5); // a window, kept to the grant
        cloud.AssertComplete(Enumerable.Range(1, 300), maxDuplicates: 0);
        Assert.Contains(gateway.Logs.Entries, e => e.EventId.Id == 5001 && e.Message.EndsWith("(in flight up to 5: the broker's Receive Maximum)", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("drop-head")]
    [InlineData("reject-publish")]
    public async Task A_full_buffer_applies_its_overflow_policy_with_exact_counts(string overflow)
    {
        // The cloud is down (the proxy refuses) until its subscriber is listening.
        await using var broker = await MosquittoBroker.StartAsync();
        await using var cloud = await CloudSubscriber.StartAsync(broker, "cloud/#");
        await using var link = new TcpProxy(broker.Port) { Mode = ProxyMode.Refuse };
        await using var gateway = await TestGateway.StartAsync(
            [.. Uplink(link.Url), "--Uplinks:cloud:Buffer:MaxMessages=100", $"--Uplinks:cloud:Buffer:Overflow={overflow}"]);
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);

        var refused = 0;
        for (var i = 1; i <= 150; i++)
        {
            var result = await sensor.PublishAsync("sensors/boiler/temp", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            refused += result.ReasonCode == MqttClientPublishReasonCode.QuotaExceeded ? 1 : 0;
        }

        var statistics = UplinkQueue(gateway).GetStatistics();
        Assert.Equal(100, statistics.Ready);
        Assert.Equal(overflow == "drop-head" ? 50 : 0, statistics.DroppedMaxLength);
        Assert.Equal(overflow == "drop-head" ? 0 : 50, statistics.RejectedMaxLength);
        Assert.Equal(overflow == "drop-head" ? 0 : 50, refused); // MQTT 5: 0x97 quota exceeded
        var metrics = UplinkMetrics(gateway);
        Assert.Equal(100, metrics["gateway.uplink.backlog.messages"]);
        Assert.Equal(overflow == "drop-head" ? 50 : 0, metrics["gateway.uplink.dropped{reason=buffer-full}"]);
        Assert.Equal(overflow == "drop-head" ? 0 : 50, metrics["gateway.uplink.dropped{reason=rejected-publish}"]);
        Assert.Equal((long)LinkState.Buffering, metrics["gateway.uplink.state"]);

        if (overflow == "reject-publish")
        {
            // MQTT 3.1.1 has no reason codes: the publisher is not acknowledged (the connection closes).
            await using var old = await MqttTestClient.ConnectAsync(gateway.MqttPort, version: MqttProtocolVersion.V311);
            await Assert.ThrowsAnyAsync<MqttCommunicationException>(() => old.PublishAsync("sensors/boiler/temp", "151"));
        }

        link.Mode = ProxyMode.Forward;
        var kept = overflow == "drop-head" ? Enumerable.Range(51, 100) : Enumerable.Range(1, 100);
        await cloud.WaitForNumbersAsync(kept);
        await PublishAsync(sensor, 1000, 1000); // a marker behind everything
        await cloud.WaitForNumbersAsync([1000]);
        Assert.Equal([.. kept, 1000], cloud.Numbers().Distinct().Order());
    }

    private static async Task<MosquittoBroker> StartedAsync(MosquittoBroker broker)
    {
        await broker.StartAsync();
        return broker;
    }

    [Fact]
    public async Task Messages_older_than_the_buffer_age_limit_expire_and_are_counted()
    {
        await using var broker = await MosquittoBroker.StartAsync(start: false);
        await using var gateway = await TestGateway.StartAsync([.. Uplink(broker.Url), "--Uplinks:cloud:Buffer:MaxAge=00:00:01"]);
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await PublishAsync(sensor, 1, 10);

        await WaitFor.ConditionAsync(() => UplinkQueue(gateway).GetStatistics().Expired == 10, "the 10 messages to expire");
        await using var cloud = await CloudSubscriber.StartAsync(await StartedAsync(broker), "cloud/#");
        await PublishAsync(sensor, 11, 11);
        await cloud.WaitForNumbersAsync([11]);
        Assert.Equal([11], cloud.Numbers());
    }

    [Fact]
    public async Task Primary_down_uses_the_secondary_and_returns_to_the_primary_when_it_is_back()
    {
        await using var primary = await MosquittoBroker.StartAsync(start: false);
        await using var secondary = await MosquittoBroker.StartAsync();
        await using var atSecondary = await CloudSubscriber.StartAsync(secondary, "cloud/#");
        await using var gateway = await TestGateway.StartAsync([.. Uplink(primary.Url, secondary.Url), "--Uplinks:cloud:ReturnToPrimaryInterval=00:00:01"]);
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);

        await PublishAsync(sensor, 1, 10);
        await atSecondary.WaitForNumbersAsync(Enumerable.Range(1, 10));

        await primary.StartAsync();
        await using var atPrimary = await CloudSubscriber.StartAsync(primary, "cloud/#");
        var primaryEndpoint = $"mqtt://127.0.0.1:{primary.Port}";
        await WaitFor.ConditionAsync(
            () => gateway.Logs.Entries.Any(e => e.EventId.Id == 5001 && e.Message.Contains(primaryEndpoint, StringComparison.Ordinal)),
            "the uplink to return to the primary");
        await PublishAsync(sensor, 11, 20);
        await atPrimary.WaitForNumbersAsync(Enumerable.Range(11, 10));
        Assert.DoesNotContain(atSecondary.Numbers(), n => n > 10);
    }

    [Fact]
    public async Task Downlink_reaches_local_subscribers_and_never_loops_back_up()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var cloud = await CloudSubscriber.StartAsync(broker, "cloud/#");
        await using var gateway = await TestGateway.StartAsync(
            [.. Uplink(broker.Url),
             "--Uplinks:cloud:Forward:1:Filter=commands/#", "--Uplinks:cloud:Forward:1:Prefix=cloud/",
             "--Uplinks:cloud:Downlink:0:Filter=cloud/commands/#", "--Uplinks:cloud:Downlink:0:StripPrefix=cloud/"]);
        await using var local = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await local.SubscribeAsync("commands/#");
        await WaitFor.ConditionAsync(() => gateway.Logs.Entries.Any(e => e.EventId.Id == 5001), "the uplink to connect");

        await using var operatorApp = await MqttTestClient.ConnectAsync(broker.Port);
        await operatorApp.PublishAsync("cloud/commands/door", "open-1");

        var received = await local.ReceiveAsync();
        Assert.Equal("commands/door", received.Topic);
        Assert.Equal("open-1", received.ConvertPayloadToString());

        // A local message on the same forward rule goes up once; the downlinked one never went back.
        await local.PublishAsync("commands/marker", "marker-2");
        await cloud.WaitForNumbersAsync([2]);
        Assert.Equal(["cloud/commands/door", "cloud/commands/marker"], cloud.Messages.Select(m => m.Topic));
    }

    // A cloud message for a local buffer that is full and refuses more (reject-publish) is never
    // acknowledged as kept. MQTT 5 tells the broker (0x97, quota exceeded), which then drops it;
    // 3.1.1 leaves it unacknowledged, so the broker sends it again when the uplink reconnects.
    [Theory]
    [InlineData("5")]
    [InlineData("3.1.1")]
    public async Task A_downlink_message_a_full_reject_publish_buffer_refuses_is_not_acknowledged_as_kept(string protocol)
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var backup = await MosquittoBroker.StartAsync();
        await using var atBackup = await CloudSubscriber.StartAsync(backup, "backup/#");
        await using var backupLink = new TcpProxy(backup.Port) { Mode = ProxyMode.Refuse };
        await using var gateway = await TestGateway.StartAsync(
            [.. Uplink(broker.Url), $"--Uplinks:cloud:ProtocolVersion={protocol}",
             "--Uplinks:cloud:Downlink:0:Filter=cloud/commands/#", "--Uplinks:cloud:Downlink:0:StripPrefix=cloud/",
             $"--Uplinks:backup:Endpoints:0={backupLink.Url}", "--Uplinks:backup:ReconnectDelayMax=00:00:01",
             "--Uplinks:backup:Forward:0:Filter=commands/#", "--Uplinks:backup:Forward:0:Prefix=backup/",
             "--Uplinks:backup:Buffer:MaxMessages=2", "--Uplinks:backup:Buffer:Overflow=reject-publish"]);
        await WaitFor.ConditionAsync(() => gateway.Logs.Entries.Any(e => e.EventId.Id == 5001), "the uplink to connect");

        // The backup uplink is down: its buffer takes two commands and refuses the third.
        await using (var operatorApp = await MqttTestClient.ConnectAsync(broker.Port))
        {
            for (var i = 1; i <= 3; i++)
            {
                await operatorApp.PublishAsync("cloud/commands/door", $"open-{i}");
            }
        }

        await WaitFor.ConditionAsync(() => UplinkMetrics(gateway).GetValueOrDefault("gateway.uplink.downlink.refused") == 1, "the third command to be refused");
        Assert.Single(gateway.Logs.Entries, e => e.EventId.Id == 5014 && e.Message.Contains("'commands/door'", StringComparison.Ordinal));
        Assert.Equal(1, UplinkMetrics(gateway, "backup")["gateway.uplink.dropped{reason=rejected-publish}"]);

        // The backup link returns and drains; then the cloud restarts and the uplink reconnects.
        backupLink.Mode = ProxyMode.Forward;
        await atBackup.WaitForNumbersAsync([1, 2]);
        await broker.StopAsync();
        await broker.StartAsync();
        await WaitFor.ConditionAsync(() => gateway.Logs.Entries.Count(e => e.EventId.Id == 5001 && e.Message.Contains(broker.Url, StringComparison.Ordinal)) == 2, "the uplink to reconnect");
        await using (var operatorApp = await MqttTestClient.ConnectAsync(broker.Port))
        {
            await operatorApp.PublishAsync("cloud/commands/door", "open-4");
        }

        await atBackup.WaitForNumbersAsync([4]);
        Assert.Equal(protocol == "5" ? [1, 2, 4] : [1, 2, 3, 4], atBackup.Numbers());
    }

    // A cloud message bigger than the uplink takes: the gateway drops it as it streams in, without
    // buffering it, says so, and answers the broker for it; the link carries on both ways.
    [Theory]
    [InlineData("5")]
    [InlineData("3.1.1")]
    public async Task A_downlink_message_over_MaxPacketSize_is_dropped_and_the_link_carries_on(string protocol)
    {
        await using var broker = await MosquittoBroker.StartAsync(true, "max_inflight_messages 20"); // its default
        await using var cloud = await CloudSubscriber.StartAsync(broker, "cloud/#");
        await using var gateway = await TestGateway.StartAsync(
            [.. Uplink(broker.Url), $"--Uplinks:cloud:ProtocolVersion={protocol}", "--Uplinks:cloud:MaxPacketSize=4096",
             "--Uplinks:cloud:Downlink:0:Filter=cloud/commands/#", "--Uplinks:cloud:Downlink:0:StripPrefix=cloud/"]);
        await using var local = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await local.SubscribeAsync("commands/#");
        await WaitFor.ConditionAsync(() => gateway.Logs.Entries.Any(e => e.EventId.Id == 5001), "the uplink to connect");

        // More than the 20 messages mosquitto keeps in flight to a client: one it was never
        // answered for would hold up every later message until the uplink reconnects.
        await using var operatorApp = await MqttTestClient.ConnectAsync(broker.Port);
        for (var i = 0; i < 25; i++)
        {
            await operatorApp.PublishAsync("cloud/commands/firmware", new string('f', 200_000));
        }

        await operatorApp.PublishAsync("cloud/commands/door", "open-1");

        var received = await local.ReceiveAsync();
        Assert.Equal(("commands/door", "open-1"), (received.Topic, received.ConvertPayloadToString()));
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await PublishAsync(sensor, 1, 10);
        await cloud.WaitForNumbersAsync(Enumerable.Range(1, 10));
        Assert.Single(gateway.Logs.Entries, e => e.EventId.Id == 5001); // never reconnected
        Assert.Equal(25, gateway.Logs.Entries.Count(e => e.EventId.Id == 5013 && e.Message.Contains("Uplinks:cloud:MaxPacketSize (4096 bytes)", StringComparison.Ordinal)));
        var metrics = UplinkMetrics(gateway);
        Assert.Equal((25, 1, 0), (metrics["gateway.uplink.downlink.dropped"], metrics["gateway.uplink.downlink.delivered"], metrics["gateway.uplink.downlink.failed"]));
    }

    [Theory]
    [InlineData("5")]
    [InlineData("3.1.1")]
    public async Task A_message_retained_at_the_cloud_is_retained_locally_and_kept_across_a_restart(string protocol)
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using (var operatorApp = await MqttTestClient.ConnectAsync(broker.Port))
        {
            await operatorApp.PublishAsync("cloud/config/interval", "60", retain: true); // there before the gateway connects
        }

        using var data = new TempDirectory();
        string[] args =
        [
            .. Uplink(broker.Url), $"--Uplinks:cloud:ProtocolVersion={protocol}", $"--Storage:DataDirectory={data.Path}",
            "--Uplinks:cloud:Downlink:0:Filter=cloud/config/#", "--Uplinks:cloud:Downlink:0:StripPrefix=cloud/",
        ];
        await using (var gateway = await TestGateway.StartAsync(args))
        {
            await using var early = await MqttTestClient.ConnectAsync(gateway.MqttPort);
            await early.SubscribeAsync("config/#");
            Assert.Equal("60", (await early.ReceiveAsync()).ConvertPayloadToString()); // downlinked

            await using var late = await MqttTestClient.ConnectAsync(gateway.MqttPort);
            await late.SubscribeAsync("config/#");
            var retained = await late.ReceiveAsync();
            Assert.Equal(("config/interval", "60", true), (retained.Topic, retained.ConvertPayloadToString(), retained.Retain));

            if (protocol == "5")
            {
                // Retain-as-published on the downlink subscription: a live retained update is kept too.
                // (MQTT 3.1.1 brokers clear the flag on live messages; only those sent on subscribing carry it.)
                await using var operatorApp = await MqttTestClient.ConnectAsync(broker.Port);
                await operatorApp.PublishAsync("cloud/config/interval", "30", retain: true);
                Assert.Equal("30", (await early.ReceiveAsync()).ConvertPayloadToString());
                await using var later = await MqttTestClient.ConnectAsync(gateway.MqttPort);
                await later.SubscribeAsync("config/#");
                Assert.Equal("30", (await later.ReceiveAsync()).ConvertPayloadToString());
            }
        }

        // The cloud is gone; the gateway still knows the last configuration it was sent.
        await broker.StopAsync();
        await using var restarted = await TestGateway.StartAsync(args);
        await using var subscriber = await MqttTestClient.ConnectAsync(restarted.MqttPort);
        await subscriber.SubscribeAsync("config/#");
        var kept = await subscriber.ReceiveAsync();
        Assert.Equal(("config/interval", protocol == "5" ? "30" : "60", true), (kept.Topic, kept.ConvertPayloadToString(), kept.Retain));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // deleted at run time: declared again
    public async Task A_message_the_cloud_refuses_goes_to_the_dead_letter_queue_and_does_not_block(bool deletedFirst)
    {
        var acl = Path.Combine(Path.GetTempPath(), "gateway-acl-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllLinesAsync(acl, ["topic read cloud/#", "topic write cloud/sensors/ok/#"]);
        await using var strict = await MosquittoBroker.StartAsync(true, $"acl_file {acl}");
        await using var cloud = await CloudSubscriber.StartAsync(strict, "cloud/#");
        await using var gateway = await TestGateway.StartAsync(Uplink(strict.Url));
        await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        if (deletedFirst)
        {
            Assert.Equal(0, gateway.Services.GetRequiredService<MessageRouter>().DeleteQueue("uplink.cloud.dead"));
        }

        await sensor.PublishAsync("sensors/ok/a", "1");
        await sensor.PublishAsync("sensors/secret/b", "2");
        await sensor.PublishAsync("sensors/ok/c", "3");

        var router = gateway.Services.GetRequiredService<MessageRouter>();
        try
        {
            await cloud.WaitForNumbersAsync([1, 3], TimeSpan.FromSeconds(8));
            await WaitFor.ConditionAsync(() => router.GetQueue("uplink.cloud.dead").ReadyCount == 1, "the refused message in the dead-letter queue", TimeSpan.FromSeconds(5));
        }
        catch
        {
            foreach (var e in gateway.Logs.Entries)
            {
                output.WriteLine($"{e.EventId.Id} {e.Message}");
            }

            output.WriteLine(string.Join(",", cloud.Numbers()));
            output.WriteLine(strict.Log);
            throw;
        }

        using var consumer = router.GetQueue("uplink.cloud.dead").AddConsumer(new ConsumerOptions { Prefetch = 1 });
        Assert.True(consumer.TryRead(out var dead));
        Assert.Equal("2", System.Text.Encoding.UTF8.GetString(dead.Message.Body.Span));
        Assert.Contains("0x87", (string)dead.Message.Properties.Headers!["x-uplink-reason"]!, StringComparison.Ordinal);
        Assert.Equal("cloud/sensors/secret/b", dead.Message.Properties.Headers["x-uplink-topic"]);
        Assert.DoesNotContain(2, cloud.Numbers());
        Assert.Equal(deletedFirst, gateway.Logs.Entries.Any(e => e.EventId.Id == 5016 && e.Message.Contains("uplink.cloud.dead was deleted", StringComparison.Ordinal)));
        Assert.Equal(1, gateway.Logs.Entries.Count(e => e.EventId.Id == 5006));
        File.Delete(acl);
    }

    [Fact]
    public async Task A_message_the_cloud_refuses_waits_while_the_dead_letter_queue_refuses_it_and_is_not_lost()
    {
        var acl = Path.Combine(Path.GetTempPath(), "gateway-acl-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllLinesAsync(acl, ["topic read cloud/#", "topic write cloud/sensors/ok/#"]);
        await using var strict = await MosquittoBroker.StartAsync(true, $"acl_file {acl}");
        await using var cloud = await CloudSubscriber.StartAsync(strict, "cloud/#");
        await using var link = new TcpProxy(strict.Port) { Mode = ProxyMode.Refuse }; // down at first
        long free = long.MaxValue;
        await using var gateway = await TestGateway.StartAsync(
            builder => builder.Services.AddSingleton<Gateway.Storage.FreeSpaceProbe>(_ => Interlocked.Read(ref free)),
            Uplink(link.Url));
        gateway.ExpectErrors(e => e.EventId.Id == 4010); // the disk under the reserve: logged as critical
        var router = gateway.Services.GetRequiredService<MessageRouter>();
        var store = gateway.Services.GetRequiredService<Gateway.Storage.LiteDbMessageStore>();
        await using (var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort))
        {
            await sensor.PublishAsync("sensors/ok/a", "1");
            await sensor.PublishAsync("sensors/secret/b", "2");
            await sensor.PublishAsync("sensors/ok/c", "3");
        }

        // Buffered and acknowledged; then the disk fills, and the cloud comes back and refuses "2".
        Interlocked.Exchange(ref free, 0);
        await WaitFor.ConditionAsync(() => store.LowOnDisk, "the store to see the disk full");
        link.Mode = ProxyMode.Forward;
        try
        {
            await WaitFor.ConditionAsync(() => gateway.Logs.Entries.Any(e => e.EventId.Id == 5015), "the dead-letter queue to refuse the rejected message");
        }
        catch
        {
            foreach (var e in gateway.Logs.Entries)
            {
                output.WriteLine($"{e.EventId.Id} {e.Message}");
            }

            output.WriteLine("cloud: " + string.Join(",", cloud.Numbers()));
            output.WriteLine(strict.Log);
            throw;
        }

        Assert.Equal(0, router.GetQueue("uplink.cloud.dead").ReadyCount);
        Assert.Equal(2, UplinkMetrics(gateway)["gateway.uplink.backlog.messages"]); // "2" and what was sent after it stay

        // Space returns: the rejected message reaches the dead-letter queue, the buffer empties.
        Interlocked.Exchange(ref free, long.MaxValue);
        await WaitFor.ConditionAsync(() => router.GetQueue("uplink.cloud.dead").ReadyCount == 1, "the rejected message in the dead-letter queue", TimeSpan.FromSeconds(15));
        await WaitFor.ConditionAsync(() => UplinkMetrics(gateway)["gateway.uplink.backlog.messages"] == 0, "the buffer to empty");
        await cloud.WaitForNumbersAsync([1, 3], TimeSpan.FromSeconds(8));
        using var consumer = router.GetQueue("uplink.cloud.dead").AddConsumer(new ConsumerOptions { Prefetch = 1 });
        Assert.True(consumer.TryRead(out var dead));
        Assert.Equal("2", System.Text.Encoding.UTF8.GetString(dead.Message.Body.Span));
        Assert.Equal(1, UplinkMetrics(gateway)["gateway.uplink.dropped{reason=broker-rejected}"]);
        Assert.DoesNotContain(2, cloud.Numbers());
        File.Delete(acl);
    }
}

/// <summary>The gateway as a child process, killed with SIGKILL while it forwards.</summary>
[Trait("Category", "Integration")]
public sealed class UplinkCrashTests
{
    [Fact]
    public async Task Killed_with_sigkill_mid_stream_loses_nothing_acknowledged_and_drains_after_restart_without_new_traffic()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var cloud = await CloudSubscriber.StartAsync(broker, "cloud/#");
        using var directory = new TempDirectory();
        string[] uplink =
        [
            "--Mqtt:Port=0", "--Http:Port=0", $"--Storage:DataDirectory={directory.Path}/data",
            "--Uplinks:cloud:Forward:0:Filter=sensors/#", "--Uplinks:cloud:Forward:0:Prefix=cloud/",
            $"--Uplinks:cloud:Endpoints:0={broker.Url}",
        ];

        const int Count = 10_000;
        await using (var gateway = HostProcessTests.StartGateway(directory.Path, [.. uplink, "--Uplinks:cloud:DrainRate=200"]))
        {
            await using var sensor = await MqttTestClient.ConnectAsync(await HostProcessTests.MqttPortOfAsync(gateway));
            for (var i = 1; i <= Count; i++)
            {
                var result = await sensor.PublishAsync("sensors/boiler/temp", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Assert.True(result.IsSuccess); // acknowledged: it must reach the cloud whatever happens next
            }

            gateway.Signal(9); // most of the 10,000 are still buffered (drain limited to 200/s)
            await gateway.WaitForExitAsync();
        }

        Assert.True(cloud.Numbers().Distinct().Count() < Count);
        await using var restarted = HostProcessTests.StartGateway(directory.Path, uplink); // no new traffic
        await cloud.WaitForNumbersAsync(Enumerable.Range(1, Count));
        cloud.AssertComplete(Enumerable.Range(1, Count), maxDuplicates: 512); // UplinkOptions.MaxInFlight default
    }

    // The store writes removals lazily; what the cloud confirmed but the disk does not know yet
    // counts against the in-flight window, so a crash at full drain speed resends no more than it.
    [Fact]
    public async Task Killed_with_sigkill_during_a_fast_drain_sends_again_no_more_than_the_in_flight_window()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var cloud = await CloudSubscriber.StartAsync(broker, "cloud/#");
        using var directory = new TempDirectory();
        const int Count = 20_000, Window = 16;
        string[] Uplink(string endpoint) =>
        [
            "--Mqtt:Port=0", "--Http:Port=0", $"--Storage:DataDirectory={directory.Path}/data",
            "--Uplinks:cloud:Forward:0:Filter=sensors/#", "--Uplinks:cloud:Forward:0:Prefix=cloud/",
            $"--Uplinks:cloud:Endpoints:0={endpoint}", $"--Uplinks:cloud:MaxInFlight={Window}",
        ];

        await using (var gateway = HostProcessTests.StartGateway(directory.Path, Uplink($"mqtt://127.0.0.1:{MosquittoBroker.FreePort()}")))
        {
            // The cloud unreachable: mosquitto_pub's 20,000 acknowledged messages are all buffered.
            var port = await HostProcessTests.MqttPortOfAsync(gateway);
            ExternalProcess.RequireTool("mosquitto_pub");
            await using var sensor = ExternalProcess.Start("sh", ["-c", $"seq 1 {Count} | mosquitto_pub -h 127.0.0.1 -p {port} -q 1 -t sensors/boiler/temp -l"]);
            Assert.Equal(0, await sensor.WaitForExitAsync());
            gateway.Signal(15);
            await gateway.WaitForExitAsync();
        }

        await using (var gateway = HostProcessTests.StartGateway(directory.Path, Uplink(broker.Url)))
        {
            await WaitFor.ConditionAsync(() => cloud.Numbers().Count >= Count / 10, "the drain to be under way");
            gateway.Signal(9); // a drain with no new traffic, so no append carries the removals to disk
            await gateway.WaitForExitAsync();
        }

        Assert.True(cloud.Numbers().Distinct().Count() < Count);
        await using var restarted = HostProcessTests.StartGateway(directory.Path, Uplink(broker.Url));
        await cloud.WaitForNumbersAsync(Enumerable.Range(1, Count));
        cloud.AssertComplete(Enumerable.Range(1, Count), maxDuplicates: Window);
    }
}
