using MQTTnet;

namespace Gateway.Host.IntegrationTests;

/// <summary>
/// Packets MQTTnet would mishandle, refused from their raw bytes (inputs the fuzz run found):
/// a client that ends its input part-way through a packet, packet identifier 0, a SUBSCRIBE
/// without a filter, a property string with U+0000. Everyone else carries on.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PacketRuleTests : IAsyncLifetime
{
    private TestGateway _gateway = null!;
    private MqttTestClient _everything = null!;

    public async Task InitializeAsync()
    {
        _gateway = await TestGateway.StartAsync();
        _everything = await MqttTestClient.ConnectAsync(_gateway.MqttPort, "everything");
        await _everything.SubscribeAsync("#");
    }

    public async Task DisposeAsync()
    {
        await _everything.AssertNothingMoreAsync(); // nothing of the refused packets was routed
        await _everything.DisposeAsync();
        await _gateway.DisposeAsync();
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public async Task Input_that_ends_part_way_through_a_packet_closes_the_connection_at_once(int level)
    {
        await using var raw = await ConnectRawAsync(level, "cut-short");
        var publish = RawMqtt.Publish("cut/short", new byte[100], level, qos: 1);

        await raw.SendAsync(publish.AsMemory(0, 20));
        raw.EndInput();

        // MQTTnet's reader used to spin on the ended input, a core at 100 %, until keep-alive ran out.
        Assert.Empty(await raw.ReadUntilClosedAsync(TimeSpan.FromSeconds(5)));
    }

    [Theory]
    [InlineData(4, 0x82)]
    [InlineData(5, 0x82)]
    [InlineData(4, 0x62)]
    [InlineData(5, 0x62)]
    [InlineData(5, 0x32)]
    public async Task Packet_identifier_0_is_refused(int level, byte type)
    {
        await using var raw = await ConnectRawAsync(level, "id-zero");
        byte[] packet = type switch
        {
            0x82 => RawMqtt.Subscribe("id/zero", 1, packetId: 0),
            0x62 => [0x62, 0x02, 0x00, 0x00],
            _ => RawMqtt.Publish("id/zero", "x"u8.ToArray(), level, qos: 1, packetId: 0),
        };
        if (level == 5 && type == 0x82)
        {
            packet = [0x82, (byte)(packet[1] + 1), 0x00, 0x00, 0x00, .. packet[4..]]; // MQTT 5: empty properties
        }

        await raw.TrySendAsync(packet);

        Assert.Equal(level == 5 ? new byte[] { 0xE0, 0x02, 0x82, 0x00 } : [], await raw.ReadUntilClosedAsync());
        Assert.Contains(_gateway.Logs.Entries, e => e.EventId.Id == 1012 && e.Message.Contains("packet identifier 0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Mqtt5_subscribe_without_a_filter_gets_disconnect_0x82()
    {
        await using var raw = await ConnectRawAsync(5, "no-filter");

        await raw.TrySendAsync(new byte[] { 0x82, 0x03, 0x00, 0x07, 0x00 }); // packet id 7, no properties, no filter

        Assert.Equal(new byte[] { 0xE0, 0x02, 0x82, 0x00 }, await raw.ReadUntilClosedAsync());
    }

    [Fact]
    public async Task Mqtt5_retained_publish_with_u0000_in_a_user_property_gets_disconnect_0x81_and_is_not_retained()
    {
        await using (var raw = await ConnectRawAsync(5, "nul-property"))
        {
            // Topic "nul/prop", packet id 1, properties: user property "k\0" = "v".
            byte[] publish =
            [
                0x33, 0x16, 0x00, 0x08, .. "nul/prop"u8, 0x00, 0x01,
                0x08, 0x26, 0x00, 0x02, (byte)'k', 0x00, 0x00, 0x01, (byte)'v', (byte)'x',
            ];
            await raw.TrySendAsync(publish);

            Assert.Equal(new byte[] { 0xE0, 0x02, 0x81, 0x00 }, await raw.ReadUntilClosedAsync());
        }

        await using var late = await MqttTestClient.ConnectAsync(_gateway.MqttPort, "late");
        await late.SubscribeAsync("nul/#");
        await late.AssertNothingMoreAsync();
        Assert.StartsWith("marker/", (await _everything.ReceiveAsync()).Topic, StringComparison.Ordinal); // late's marker
    }

    private async Task<RawSocketClient> ConnectRawAsync(int level, string clientId)
    {
        var raw = await RawSocketClient.ConnectAsync(_gateway.MqttPort);
        await raw.SendAsync(RawMqtt.Connect(level, clientId));
        var connack = await raw.ReadMqttPacketAsync();
        Assert.Equal(0x20, connack[0]);
        Assert.Equal(0x00, connack[3]);
        return raw;
    }
}
