using System.Text;
using Gateway.Protocols.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Formatter;

namespace Gateway.Host.IntegrationTests;

/// <summary>
/// Topic names with wildcards, empty ones without an MQTT 5 topic alias, ill-formed UTF-8, and
/// wills with such topics (MQTT-3.3.2-2, MQTT-4.7.3-1): the connection is closed without an
/// acknowledgement (3.1.1) or with DISCONNECT/CONNACK and the reason (5.0); nothing of the packet
/// is routed or retained, and everyone else carries on.
/// </summary>
[Trait("Category", "Integration")]
public sealed class InvalidTopicTests : IAsyncLifetime
{
    private TestGateway _gateway = null!;
    private MqttTestClient _healthy = null!;
    private MqttTestClient _everything = null!;

    public async Task InitializeAsync()
    {
        _gateway = await TestGateway.StartAsync();
        _healthy = await MqttTestClient.ConnectAsync(_gateway.MqttPort, "healthy");
        await _healthy.SubscribeAsync("healthy/#");
        _everything = await MqttTestClient.ConnectAsync(_gateway.MqttPort, "everything");
        await _everything.SubscribeAsync("#");
    }

    public async Task DisposeAsync()
    {
        // The '#' subscriber got nothing from the refused packets, and a healthy client still round-trips.
        await _everything.AssertNothingMoreAsync();
        await _healthy.PublishAsync("healthy/check", "still here");
        Assert.Equal("still here", (await _healthy.ReceiveAsync()).ConvertPayloadToString());
        await _healthy.DisposeAsync();
        await _everything.DisposeAsync();
        await _gateway.DisposeAsync();
    }

    public static TheoryData<string, int> InvalidTopics => new()
    {
        { "w/#", 0 }, { "w/#", 1 }, { "w/+/x", 1 }, { "+", 2 }, { "#", 0 }, { string.Empty, 1 }, { string.Empty, 0 },
    };

    [Theory]
    [MemberData(nameof(InvalidTopics))]
    public async Task Mqtt311_publish_to_an_invalid_topic_closes_the_connection_without_an_ack(string topic, int qos)
    {
        await using var raw = await ConnectRawAsync(4, "bad-topic-311");

        await raw.TrySendAsync(RawMqtt.Publish(topic, "x"u8.ToArray(), level: 4, qos: qos));

        Assert.Empty(await raw.ReadUntilClosedAsync());
        Assert.Contains(_gateway.Logs.Entries, e => e.EventId.Id == 1012 && e.Level == Microsoft.Extensions.Logging.LogLevel.Warning);
    }

    [Theory]
    [MemberData(nameof(InvalidTopics))]
    public async Task Mqtt5_publish_to_an_invalid_topic_gets_disconnect_0x90(string topic, int qos)
    {
        await using var raw = await ConnectRawAsync(5, "bad-topic-5");

        await raw.TrySendAsync(RawMqtt.Publish(topic, "x"u8.ToArray(), level: 5, qos: qos));

        Assert.Equal(new byte[] { 0xE0, 0x02, 0x90, 0x00 }, await raw.ReadUntilClosedAsync());
    }

    [Fact]
    public async Task Mqtt5_connect_and_invalid_publish_in_one_write_get_connack_then_disconnect_0x90()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);

        await raw.SendAsync(RawMqtt.Connect(5, "one-write").Concat(RawMqtt.Publish("w/#", "x"u8.ToArray(), level: 5, qos: 1)).ToArray());

        var reply = await raw.ReadUntilClosedAsync();
        Assert.Equal(0x20, reply[0]);
        Assert.Equal(0x00, reply[3]); // the CONNECT itself was fine
        Assert.Equal(new byte[] { 0xE0, 0x02, 0x90, 0x00 }, reply[^4..]);
    }

    [Fact]
    public async Task Publishes_before_the_invalid_one_are_still_delivered()
    {
        await using var raw = await ConnectRawAsync(4, "good-then-bad");

        await raw.TrySendAsync(RawMqtt.Publish("healthy/first", "1"u8.ToArray(), level: 4).Concat(RawMqtt.Publish("w/#", "2"u8.ToArray(), level: 4)).ToArray());

        Assert.Empty(await raw.ReadUntilClosedAsync());
        Assert.Equal("healthy/first", (await _healthy.ReceiveAsync()).Topic);
        Assert.Equal("healthy/first", (await _everything.ReceiveAsync()).Topic);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public async Task Retained_publish_to_a_wildcard_topic_is_not_stored(int level)
    {
        await using (var raw = await ConnectRawAsync(level, "retainer"))
        {
            await raw.TrySendAsync(RawMqtt.Publish(Encoding.UTF8.GetBytes("wr/#"), "kept?"u8.ToArray(), level, qos: 1, retain: true));
            var reply = await raw.ReadUntilClosedAsync();
            Assert.Equal(level == 5 ? new byte[] { 0xE0, 0x02, 0x90, 0x00 } : [], reply);
        }

        await using var late = await MqttTestClient.ConnectAsync(_gateway.MqttPort, "late", level == 5 ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311);
        await late.SubscribeAsync("wr/#");
        await late.AssertNothingMoreAsync(); // no retained message came with the subscription
        Assert.StartsWith("marker/", (await _everything.ReceiveAsync()).Topic, StringComparison.Ordinal); // late's marker
    }

    [Fact]
    public async Task Mqtt5_empty_topic_with_an_alias_set_earlier_is_delivered_on_the_aliased_topic()
    {
        await using var raw = await ConnectRawAsync(5, "aliaser");

        await raw.SendAsync(RawMqtt.Publish(Encoding.UTF8.GetBytes("healthy/alias"), "first"u8.ToArray(), level: 5, qos: 1, packetId: 1, topicAlias: 7));
        Assert.Equal(0x40, (await raw.ReadMqttPacketAsync())[0]); // PUBACK
        await raw.SendAsync(RawMqtt.Publish([], "second"u8.ToArray(), level: 5, qos: 1, packetId: 2, topicAlias: 7));
        Assert.Equal(0x40, (await raw.ReadMqttPacketAsync())[0]);

        foreach (var expected in new[] { "first", "second" })
        {
            var message = await _healthy.ReceiveAsync();
            Assert.Equal(("healthy/alias", expected), (message.Topic, message.ConvertPayloadToString()));
            Assert.Equal("healthy/alias", (await _everything.ReceiveAsync()).Topic);
        }
    }

    [Fact]
    public async Task Mqtt5_empty_topic_with_an_alias_never_set_gets_disconnect_0x82()
    {
        await using var raw = await ConnectRawAsync(5, "alias-unknown");

        await raw.TrySendAsync(RawMqtt.Publish([], "x"u8.ToArray(), level: 5, qos: 1, topicAlias: 9));

        Assert.Equal(new byte[] { 0xE0, 0x02, 0x82, 0x00 }, await raw.ReadUntilClosedAsync());
    }

    [Fact]
    public async Task Mqtt5_topic_alias_0_gets_disconnect_0x94()
    {
        await using var raw = await ConnectRawAsync(5, "alias-zero");

        await raw.TrySendAsync(RawMqtt.Publish(Encoding.UTF8.GetBytes("healthy/zero"), "x"u8.ToArray(), level: 5, qos: 1, topicAlias: 0));

        Assert.Equal(new byte[] { 0xE0, 0x02, 0x94, 0x00 }, await raw.ReadUntilClosedAsync());
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public async Task Topic_that_is_not_utf8_is_refused_as_malformed(int level)
    {
        await using var raw = await ConnectRawAsync(level, "not-utf8");

        await raw.TrySendAsync(RawMqtt.Publish([(byte)'h', (byte)'/', 0xFF, 0xFE], "x"u8.ToArray(), level, qos: 1));

        Assert.Equal(level == 5 ? new byte[] { 0xE0, 0x02, 0x81, 0x00 } : [], await raw.ReadUntilClosedAsync());
    }

    [Theory]
    [InlineData(4, "will/#")]
    [InlineData(4, "")]
    [InlineData(5, "will/+")]
    [InlineData(5, "")]
    public async Task Connect_with_an_invalid_will_topic_is_refused_and_the_will_is_never_published(int level, string willTopic)
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);

        await raw.TrySendAsync(RawMqtt.Connect(level, "bad-will", willTopic: willTopic, willPayload: "gone"));

        // MQTT 3.1.1 section 3.1.4: close without CONNACK; MQTT 5.0: CONNACK 0x90 Topic Name invalid.
        Assert.Equal(level == 5 ? new byte[] { 0x20, 0x03, 0x00, 0x90, 0x00 } : [], await raw.ReadUntilClosedAsync());
        Assert.Contains(_gateway.Logs.Entries, e => e.EventId.Id == 1012 && e.Message.Contains("CONNECT", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Mqtt5_connect_whose_will_cannot_be_read_strictly_gets_connack_0x81()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        var connect = RawMqtt.Connect(5, "short-props", willTopic: "will/+", willPayload: "gone").ToList();
        // One user property ("k" = "v", 8 bytes) declared as 5 bytes long: a lenient reader reads
        // on past the block and still finds the will topic "will/+" where a strict one cannot.
        connect.InsertRange(13, new byte[] { 0x26, 0x00, 0x01, (byte)'k', 0x00, 0x01, (byte)'v' });
        connect[12] = 5;
        connect[1] += 7;

        await raw.TrySendAsync(connect.ToArray());

        Assert.Equal(new byte[] { 0x20, 0x03, 0x00, 0x81, 0x00 }, await raw.ReadUntilClosedAsync());
    }

    [Fact]
    public async Task Refusals_are_counted_by_reason()
    {
        var counters = _gateway.Services.GetRequiredService<MqttAdapter>().Counters;
        await using (var raw = await ConnectRawAsync(5, "counted"))
        {
            await raw.TrySendAsync(RawMqtt.Publish("w/+", "x"u8.ToArray(), level: 5));
            await raw.ReadUntilClosedAsync();
        }

        await WaitFor.ConditionAsync(() => Refused(counters, "topic-name-invalid") == 1, "the refusal to be counted");
        Assert.Equal(0, Refused(counters, "packet-too-large"));

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_gateway.HttpPort}") };
        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Contains("gateway_mqtt_packets_refused_total{reason=\"topic-name-invalid\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("gateway_mqtt_packets_refused_total{reason=\"packet-too-large\"} 0\n", metrics, StringComparison.Ordinal);
    }

    private static long Refused(MqttCounters counters, string reason) =>
        counters.PacketsRefused().Single(m => Equals(m.Tags[0].Value, reason)).Value;

    private async Task<RawSocketClient> ConnectRawAsync(int level, string clientId)
    {
        var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        await raw.SendAsync(RawMqtt.Connect(level, clientId));
        var connack = await raw.ReadMqttPacketAsync();
        Assert.Equal(0x20, connack[0]);
        Assert.Equal(0x00, connack[3]); // accepted
        return raw;
    }
}
