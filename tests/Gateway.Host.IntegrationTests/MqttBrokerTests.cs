using System.Text;
using Gateway.Protocols.Mqtt;
using Gateway.Routing;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace Gateway.Host.IntegrationTests;

/// <summary>The gateway used as an ordinary MQTT broker by MQTTnet clients.</summary>
[Trait("Category", "Integration")]
public sealed class MqttBrokerTests : IAsyncLifetime
{
    private TestGateway _gateway = null!;

    public async Task InitializeAsync() => _gateway = await TestGateway.StartAsync();

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    public static TheoryData<MqttProtocolVersion, MqttQualityOfServiceLevel> VersionsAndQos()
    {
        var data = new TheoryData<MqttProtocolVersion, MqttQualityOfServiceLevel>();
        foreach (var version in new[] { MqttProtocolVersion.V310, MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
        {
            foreach (var qos in new[] { MqttQualityOfServiceLevel.AtMostOnce, MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.ExactlyOnce })
            {
                data.Add(version, qos);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(VersionsAndQos))]
    public async Task Publish_reaches_subscriber_at_each_version_and_qos(MqttProtocolVersion version, MqttQualityOfServiceLevel qos)
    {
        await using var subscriber = await MqttTestClient.ConnectAsync(_gateway.MqttPort, version: version);
        await using var publisher = await MqttTestClient.ConnectAsync(_gateway.MqttPort, version: version);
        await subscriber.SubscribeAsync("plant/+/temperature", MqttQualityOfServiceLevel.ExactlyOnce);

        var result = await publisher.PublishAsync("plant/boiler/temperature", "21.5", qos);

        Assert.True(result.IsSuccess);
        var received = await subscriber.ReceiveAsync();
        Assert.Equal("plant/boiler/temperature", received.Topic);
        Assert.Equal("21.5", received.ConvertPayloadToString());
        Assert.Equal(qos, received.QualityOfServiceLevel);
    }

    [Fact]
    public async Task Subscription_qos_caps_delivery_qos()
    {
        await using var subscriber = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await using var publisher = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await subscriber.SubscribeAsync("capped", MqttQualityOfServiceLevel.AtMostOnce);

        await publisher.PublishAsync("capped", "x", MqttQualityOfServiceLevel.ExactlyOnce);

        Assert.Equal(MqttQualityOfServiceLevel.AtMostOnce, (await subscriber.ReceiveAsync()).QualityOfServiceLevel);
    }

    [Fact]
    public async Task Wildcards_match_per_mqtt_rules()
    {
        await using var client = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await client.SubscribeAsync("home/+/light");
        await client.SubscribeAsync("office/#");

        foreach (var topic in new[] { "home/kitchen/light", "home/kitchen/fan", "home/a/b/light", "office", "office/floor1/desk", "officer/x" })
        {
            await client.PublishAsync(topic, topic);
        }

        Assert.Equal("home/kitchen/light", (await client.ReceiveAsync()).Topic);
        Assert.Equal("office", (await client.ReceiveAsync()).Topic);
        Assert.Equal("office/floor1/desk", (await client.ReceiveAsync()).Topic);
        await client.AssertNothingMoreAsync();
    }

    [Fact]
    public async Task Topics_with_dots_and_empty_levels_round_trip_unchanged()
    {
        await using var client = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await client.SubscribeAsync("#");

        foreach (var topic in new[] { "v1.2/status", "a//b", "/leading", "trailing/" })
        {
            await client.PublishAsync(topic, "x");
            Assert.Equal(topic, (await client.ReceiveAsync()).Topic);
        }
    }

    [Fact]
    public async Task Hash_does_not_match_dollar_topics()
    {
        await using var client = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await client.SubscribeAsync("#");
        await client.SubscribeAsync("$internal/#");

        await client.PublishAsync("$internal/x", "dollar");
        await client.PublishAsync("plain", "plain");

        // One copy of the $ topic (via the explicit filter), then the plain one.
        Assert.Equal("$internal/x", (await client.ReceiveAsync()).Topic);
        Assert.Equal("plain", (await client.ReceiveAsync()).Topic);
        await client.AssertNothingMoreAsync();
    }

    [Fact]
    public async Task Each_subscriber_gets_exactly_one_copy_even_with_overlapping_filters()
    {
        await using var a = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await using var b = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await a.SubscribeAsync("s/#");
        await a.SubscribeAsync("s/+");
        await a.SubscribeAsync("s/x");
        await b.SubscribeAsync("s/x");

        await using var publisher = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await publisher.PublishAsync("s/x", "once");

        Assert.Equal("once", (await a.ReceiveAsync()).ConvertPayloadToString());
        Assert.Equal("once", (await b.ReceiveAsync()).ConvertPayloadToString());
        await a.AssertNothingMoreAsync();
        await b.AssertNothingMoreAsync();
    }

    [Fact]
    public async Task Retained_message_reaches_later_subscribers_until_cleared()
    {
        await using var publisher = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await publisher.PublishAsync("status/pump", "running", retain: true);

        await using (var late = await MqttTestClient.ConnectAsync(_gateway.MqttPort))
        {
            await late.SubscribeAsync("status/#");
            var retained = await late.ReceiveAsync();
            Assert.Equal("running", retained.ConvertPayloadToString());
            Assert.True(retained.Retain);
        }

        await publisher.PublishAsync("status/pump", string.Empty, retain: true);

        await using var later = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await later.SubscribeAsync("status/#");
        await later.AssertNothingMoreAsync();
    }

    [Fact]
    public async Task Live_messages_arrive_without_retain_flag_unless_retain_as_published()
    {
        await using var plain = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await using var rap = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await plain.SubscribeAsync("flag");
        await rap.SubscribeAsync("flag", retainAsPublished: true);

        await plain.PublishAsync("flag", "x", retain: true);

        Assert.False((await plain.ReceiveAsync()).Retain);
        Assert.True((await rap.ReceiveAsync()).Retain);
    }

    [Fact]
    public async Task Will_is_published_when_a_client_goes_away_without_disconnect()
    {
        await using var watcher = await MqttTestClient.ConnectAsync(_gateway.MqttPort, version: MqttProtocolVersion.V311);
        await watcher.SubscribeAsync("wills/#");

        await using (var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort))
        {
            await raw.SendAsync(RawMqtt.Connect(4, "dying-sensor", willTopic: "wills/dying-sensor", willPayload: "offline"));
            Assert.Equal(new byte[] { 0x20, 0x02, 0x00, 0x00 }, await raw.ReadExactlyAsync(4));
        } // socket closed without DISCONNECT

        var will = await watcher.ReceiveAsync();
        Assert.Equal("wills/dying-sensor", will.Topic);
        Assert.Equal("offline", will.ConvertPayloadToString());
    }

    [Fact]
    public async Task Will_is_not_published_after_a_clean_disconnect()
    {
        await using var watcher = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await watcher.SubscribeAsync("wills/#");

        var client = await MqttTestClient.ConnectAsync(_gateway.MqttPort, configure: o => o.WithWillTopic("wills/polite").WithWillPayload("offline"));
        await client.DisposeAsync();

        await watcher.AssertNothingMoreAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Persistent_session_keeps_subscriptions_and_queues_messages_while_offline(MqttProtocolVersion version)
    {
        var id = "persistent-" + version;
        var first = await MqttTestClient.ConnectAsync(_gateway.MqttPort, id, version, cleanSession: false);
        await first.SubscribeAsync("jobs/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await first.DisposeAsync();

        await using (var publisher = await MqttTestClient.ConnectAsync(_gateway.MqttPort))
        {
            await publisher.PublishAsync("jobs/1", "while-offline");
        }

        await using var again = await MqttTestClient.ConnectAsync(_gateway.MqttPort, id, version, cleanSession: false);
        Assert.True(again.ConnectResult!.IsSessionPresent);
        Assert.Equal("while-offline", (await again.ReceiveAsync()).ConvertPayloadToString());
    }

    [Fact]
    public async Task Clean_session_starts_without_old_subscriptions()
    {
        var first = await MqttTestClient.ConnectAsync(_gateway.MqttPort, "cleaner", MqttProtocolVersion.V311, cleanSession: false);
        await first.SubscribeAsync("old/#");
        await first.DisposeAsync();

        await using var clean = await MqttTestClient.ConnectAsync(_gateway.MqttPort, "cleaner", MqttProtocolVersion.V311, cleanSession: true);
        Assert.False(clean.ConnectResult!.IsSessionPresent);
        await clean.PublishAsync("old/x", "x");
        await clean.AssertNothingMoreAsync();
    }

    [Fact]
    public async Task Mqtt5_properties_pass_through()
    {
        await using var subscriber = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await using var publisher = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await subscriber.SubscribeAsync("rpc/request");

        await publisher.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic("rpc/request")
            .WithPayload("{\"op\":\"read\"}")
            .WithContentType("application/json")
            .WithCorrelationData([1, 2, 3, 255])
            .WithResponseTopic("rpc/reply/client.7")
            .WithMessageExpiryInterval(120)
            .WithUserProperty("tenant", Encoding.UTF8.GetBytes("plant-4").AsMemory())
            .WithUserProperty("trace", Encoding.UTF8.GetBytes("abc").AsMemory())
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());

        var received = await subscriber.ReceiveAsync();
        Assert.Equal("application/json", received.ContentType);
        Assert.Equal(new byte[] { 1, 2, 3, 255 }, received.CorrelationData);
        Assert.Equal("rpc/reply/client.7", received.ResponseTopic);
        Assert.InRange(received.MessageExpiryInterval, 1u, 120u);
        Assert.Equal(["tenant=plant-4", "trace=abc"], received.UserProperties!.Select(p => $"{p.Name}={p.ReadValueAsString()}"));
    }

    [Fact]
    public async Task No_local_subscription_does_not_echo_own_messages()
    {
        await using var client = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await client.SubscribeAsync("chat", noLocal: true);
        await using var other = await MqttTestClient.ConnectAsync(_gateway.MqttPort);

        await client.PublishAsync("chat", "mine");
        await other.PublishAsync("chat", "theirs");

        Assert.Equal("theirs", (await client.ReceiveAsync()).ConvertPayloadToString());
        await client.AssertNothingMoreAsync();
    }

    [Fact]
    public async Task Messages_from_one_publisher_arrive_in_order()
    {
        await using var subscriber = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await using var publisher = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await subscriber.SubscribeAsync("seq");

        const int Count = 2000;
        var sends = new List<Task>();
        for (var i = 0; i < Count; i++)
        {
            sends.Add(publisher.PublishAsync("seq", i.ToString(System.Globalization.CultureInfo.InvariantCulture), i % 2 == 0 ? MqttQualityOfServiceLevel.AtMostOnce : MqttQualityOfServiceLevel.AtLeastOnce));
        }

        await Task.WhenAll(sends);
        for (var i = 0; i < Count; i++)
        {
            Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), (await subscriber.ReceiveAsync()).ConvertPayloadToString());
        }
    }

    [Fact]
    public async Task Empty_client_id_gets_an_assigned_one_with_clean_session()
    {
        await using var v311 = await MqttTestClient.ConnectAsync(_gateway.MqttPort, clientId: string.Empty, version: MqttProtocolVersion.V311);
        await using var v5 = await MqttTestClient.ConnectAsync(_gateway.MqttPort, clientId: string.Empty);
        Assert.False(string.IsNullOrEmpty(v5.ConnectResult!.AssignedClientIdentifier));

        await v311.SubscribeAsync("anon");
        await v5.PublishAsync("anon", "hi");
        Assert.Equal("hi", (await v311.ReceiveAsync()).ConvertPayloadToString());
    }

    [Fact]
    public async Task Mqtt_over_websocket_works()
    {
        var uri = $"ws://127.0.0.1:{_gateway.HttpPort}/ws/mqtt";
        await using var ws = await MqttTestClient.ConnectAsync(0, webSocketUri: uri);
        await using var tcp = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await ws.SubscribeAsync("web/#");
        await tcp.SubscribeAsync("tcp/#");

        await tcp.PublishAsync("web/in", "from-tcp");
        await ws.PublishAsync("tcp/in", "from-ws");

        Assert.Equal("from-tcp", (await ws.ReceiveAsync()).ConvertPayloadToString());
        Assert.Equal("from-ws", (await tcp.ReceiveAsync()).ConvertPayloadToString());
    }

    [Fact]
    public async Task Mqtt_publishes_reach_router_queues_and_router_messages_reach_mqtt()
    {
        var router = _gateway.Services.GetRequiredService<MessageRouter>();
        var queue = router.DeclareQueue("audit", QueueOptions.Transient);
        router.Bind("amq.topic", "audit", "sensors.#");
        using var consumer = queue.AddConsumer(new ConsumerOptions { AutoAck = true });
        await using var client = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await client.SubscribeAsync("commands/+/set");

        await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("sensors/line.1/temp").WithPayload("7").WithContentType("text/plain").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.True(await consumer.WaitToReadAsync(TestContext.Timeout()));
        Assert.True(consumer.TryRead(out var delivery));
        Assert.Equal("amq.topic", delivery.Message.Exchange);
        Assert.Equal("sensors.line/1.temp", delivery.Message.RoutingKey);
        Assert.Equal("text/plain", delivery.Message.Properties.ContentType);
        Assert.True(delivery.Message.Persistent);

        await router.PublishAsync(
            new GatewayMessage("amq.topic", "commands.valve.set", Encoding.UTF8.GetBytes("open"), new MessageProperties { ReplyTo = "replies.valve" }),
            TestContext.Timeout());
        var command = await client.ReceiveAsync();
        Assert.Equal("commands/valve/set", command.Topic);
        Assert.Equal("open", command.ConvertPayloadToString());
        Assert.Equal("replies/valve", command.ResponseTopic);
        Assert.Equal(MqttQualityOfServiceLevel.AtMostOnce, command.QualityOfServiceLevel);
    }

    [Fact]
    public async Task Unsubscribing_and_disconnecting_remove_the_router_binding()
    {
        var router = _gateway.Services.GetRequiredService<MessageRouter>();
        var topic = router.GetExchange("amq.topic");
        var before = topic.BindingCount;
        await using (var client = await MqttTestClient.ConnectAsync(_gateway.MqttPort))
        {
            await client.SubscribeAsync("temp/a");
            await client.SubscribeAsync("temp/b");
            Assert.Equal(before + 2, topic.BindingCount);
            await client.Client.UnsubscribeAsync("temp/a");
            Assert.Equal(before + 1, topic.BindingCount);
        }

        await WaitFor.ConditionAsync(() => topic.BindingCount == before, "the clean session's binding to go");
    }

    [Fact]
    public async Task A_subscriber_that_stops_reading_does_not_hold_up_the_others()
    {
        await using var stuck = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        await stuck.SendAsync(RawMqtt.Connect(4, "stuck"));
        await stuck.ReadMqttPacketAsync();
        await stuck.SendAsync(RawMqtt.Subscribe("flood/#", 0));
        await stuck.ReadMqttPacketAsync(); // SUBACK; from here on it never reads again
        await using var healthy = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await healthy.SubscribeAsync("flood/#", MqttQualityOfServiceLevel.AtMostOnce);
        await using var publisher = await MqttTestClient.ConnectAsync(_gateway.MqttPort);

        // Far more than the socket buffers of the stuck client can hold.
        const int Count = 400;
        var payload = new string('p', 60_000);
        for (var i = 0; i < Count; i++)
        {
            await publisher.PublishAsync($"flood/{i}", payload);
        }

        for (var i = 0; i < Count; i++)
        {
            Assert.Equal($"flood/{i}", (await healthy.ReceiveAsync()).Topic);
        }
    }

    [Fact]
    public async Task Qos1_publish_with_no_subscribers_reports_no_matching_subscribers_to_mqtt5()
    {
        await using var client = await MqttTestClient.ConnectAsync(_gateway.MqttPort);

        var result = await client.PublishAsync("nobody/listens", "x");

        Assert.Equal(MqttClientPublishReasonCode.NoMatchingSubscribers, result.ReasonCode);
    }
}
