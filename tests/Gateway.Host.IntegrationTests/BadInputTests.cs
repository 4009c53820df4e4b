using MQTTnet;
using MQTTnet.Formatter;

namespace Gateway.Host.IntegrationTests;

/// <summary>
/// Scripted peers that misbehave. Each must be disconnected (with the MQTT 5 reason where the
/// protocol has one) while a healthy client on the side keeps working.
/// </summary>
[Trait("Category", "Integration")]
public sealed class BadInputTests : IAsyncLifetime
{
    private const int MaxPacketSize = 4096;
    private TestGateway _gateway = null!;
    private MqttTestClient _healthy = null!;

    public async Task InitializeAsync()
    {
        _gateway = await TestGateway.StartAsync($"--Mqtt:MaxPacketSize={MaxPacketSize}", "--Mqtt:ConnectTimeout=00:00:01");
        _healthy = await MqttTestClient.ConnectAsync(_gateway.MqttPort, "healthy");
        await _healthy.SubscribeAsync("healthy/#");
    }

    public async Task DisposeAsync()
    {
        // The healthy client still round-trips after whatever the test did.
        await _healthy.PublishAsync("healthy/check", "still here");
        Assert.Equal("still here", (await _healthy.ReceiveAsync()).ConvertPayloadToString());
        await _healthy.DisposeAsync();
        await _gateway.DisposeAsync();
    }

    [Fact]
    public async Task Oversized_publish_from_mqtt5_client_gets_disconnect_0x95_before_the_body_is_sent()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        await raw.SendAsync(RawMqtt.Connect(5, "big-talker"));
        var connack = await raw.ReadMqttPacketAsync();
        Assert.Equal(0x20, connack[0]);
        Assert.Equal(0x00, connack[3]); // success

        // Only the fixed header: it declares 300 kB, the gateway must refuse on that alone.
        await raw.SendAsync(RawMqtt.Header(0x30, 300_000));

        var reply = await raw.ReadUntilClosedAsync();
        Assert.Equal(new byte[] { 0xE0, 0x02, 0x95, 0x00 }, reply);
        Assert.Contains(_gateway.Logs.Entries, e => e.EventId.Id == 1001 && e.Message.Contains("300004", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Oversized_publish_from_mqtt311_client_is_disconnected()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        await raw.SendAsync(RawMqtt.Connect(4, "big-311"));
        Assert.Equal(new byte[] { 0x20, 0x02, 0x00, 0x00 }, await raw.ReadExactlyAsync(4));

        await raw.TrySendAsync(RawMqtt.Publish("t", new byte[MaxPacketSize + 10], level: 4, qos: 1));

        Assert.Empty(await raw.ReadUntilClosedAsync()); // MQTT 3.1.1 has no DISCONNECT from the server
    }

    [Fact]
    public async Task Mqtt5_connack_tells_clients_the_maximum_packet_size()
    {
        await using var client = await MqttTestClient.ConnectAsync(_gateway.MqttPort);

        Assert.Equal((uint)MaxPacketSize, client.ConnectResult!.MaximumPacketSize);
    }

    [Fact]
    public async Task Publish_just_under_the_limit_is_delivered()
    {
        await using var publisher = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        var payload = new string('x', MaxPacketSize - 100);

        await publisher.PublishAsync("healthy/big", payload);

        Assert.Equal(payload.Length, (await _healthy.ReceiveAsync()).Payload.Length);
    }

    [Fact]
    public async Task Oversized_connect_from_mqtt5_client_gets_connack_0x95()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        await raw.TrySendAsync(RawMqtt.Connect(5, new string('c', MaxPacketSize)));

        Assert.Equal(new byte[] { 0x20, 0x03, 0x00, 0x95, 0x00 }, await raw.ReadUntilClosedAsync());
    }

    [Fact]
    public async Task Malformed_remaining_length_is_disconnected()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        await raw.SendAsync(RawMqtt.Connect(5, "bad-length"));
        await raw.ReadMqttPacketAsync();

        await raw.SendAsync(new byte[] { 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }); // five length bytes

        Assert.Equal(new byte[] { 0xE0, 0x02, 0x81, 0x00 }, await raw.ReadUntilClosedAsync());
    }

    [Fact]
    public async Task Connect_with_unknown_protocol_name_is_refused()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        var connect = RawMqtt.Connect(4, "impostor");
        connect[4] = (byte)'X'; // "MQTT" -> "XQTT"
        await raw.SendAsync(connect);

        var reply = await raw.ReadUntilClosedAsync();
        Assert.True(reply.Length == 0 || reply[0] == 0x20, "either closed, or a CONNACK refusal before closing");
        if (reply.Length >= 4)
        {
            Assert.NotEqual(0, reply[3]);
        }
    }

    [Fact]
    public async Task Connect_with_unsupported_protocol_level_is_refused()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        var connect = RawMqtt.Connect(4, "from-the-future");
        connect[8] = 9; // protocol level 9
        await raw.SendAsync(connect);

        var reply = await raw.ReadUntilClosedAsync();
        Assert.True(reply.Length == 0 || (reply[0] == 0x20 && reply[3] != 0));
    }

    [Fact]
    public async Task Garbage_bytes_are_disconnected()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        await raw.TrySendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());

        await raw.ReadUntilClosedAsync();
    }

    [Fact]
    public async Task First_packet_other_than_connect_is_disconnected()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        await raw.SendAsync(RawMqtt.Publish("sneaky", "x"u8.ToArray(), level: 4));

        Assert.Empty(await raw.ReadUntilClosedAsync());
        await _healthy.AssertNothingMoreAsync();
    }

    [Fact]
    public async Task Silent_client_is_disconnected_after_the_connect_timeout()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);

        Assert.Empty(await raw.ReadUntilClosedAsync());
        Assert.Contains(_gateway.Logs.Entries, e => e.EventId.Id == 1003);
    }

    [Fact]
    public async Task Client_that_stalls_mid_connect_is_disconnected_after_the_connect_timeout()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        await raw.SendAsync(RawMqtt.Connect(4, "half").AsMemory(0, 6));

        Assert.Empty(await raw.ReadUntilClosedAsync());
    }

    [Fact]
    public async Task Byte_by_byte_connect_is_accepted()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        foreach (var b in RawMqtt.Connect(4, "trickle"))
        {
            await raw.SendAsync(new[] { b });
        }

        Assert.Equal(new byte[] { 0x20, 0x02, 0x00, 0x00 }, await raw.ReadExactlyAsync(4));
        foreach (var b in RawMqtt.Publish("healthy/trickle", "drip"u8.ToArray(), level: 4))
        {
            await raw.SendAsync(new[] { b });
        }

        Assert.Equal("drip", (await _healthy.ReceiveAsync()).ConvertPayloadToString());
    }

    [Fact]
    public async Task Mqtt31_client_with_empty_id_is_refused()
    {
        await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        await raw.SendAsync(RawMqtt.Connect(3, string.Empty));

        var reply = await raw.ReadUntilClosedAsync();
        Assert.Equal(new byte[] { 0x20, 0x02, 0x00, 0x02 }, reply); // identifier rejected
    }

    [Fact]
    public async Task Many_bad_clients_at_once_leave_the_gateway_serving()
    {
        var attacks = Enumerable.Range(0, 20).Select(async i =>
        {
            await using var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
            await raw.TrySendAsync(i % 2 == 0 ? RawMqtt.Header(0x10, 100_000_000) : new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF });
            await raw.ReadUntilClosedAsync();
        });

        await Task.WhenAll(attacks);

        await using var late = await MqttTestClient.ConnectAsync(_gateway.MqttPort, version: MqttProtocolVersion.V311);
        await late.PublishAsync("healthy/late", "ok");
        Assert.Equal("ok", (await _healthy.ReceiveAsync()).ConvertPayloadToString());
    }
}
