using Gateway.Uplinks;
using Gateway.Uplinks.Mqtt;
using MQTTnet.Exceptions;

namespace Gateway.Host.IntegrationTests;

/// <summary>
/// What the uplink reads from the cloud broker is checked packet by packet before MQTTnet sees
/// it; here the bytes arrive split at every possible place, through a buffer smaller than a packet.
/// </summary>
[Trait("Category", "Unit")]
public sealed class UplinkInputTests
{
    private const int Limit = 128;

    private static byte[] Packet(byte type, int bodyLength)
    {
        var header = new List<byte> { type };
        var length = bodyLength;
        do
        {
            var digit = (byte)(length % 128);
            length /= 128;
            header.Add(length > 0 ? (byte)(digit | 0x80) : digit);
        }
        while (length > 0);

        return [.. header, .. Enumerable.Range(0, bodyLength).Select(i => (byte)(i * 31 + type))];
    }

    // A PUBLISH as a broker sends it: topic length, topic, packet identifier at QoS 1 and 2, payload.
    private static byte[] Publish(int qos, ushort packetId, int topicLength, int payloadLength)
    {
        var body = new List<byte> { (byte)(topicLength >> 8), (byte)topicLength };
        body.AddRange(Enumerable.Repeat((byte)'t', topicLength));
        if (qos > 0)
        {
            body.AddRange([(byte)(packetId >> 8), (byte)packetId]);
        }

        body.AddRange(Enumerable.Range(0, payloadLength).Select(i => (byte)(i * 31)));
        var packet = Packet((byte)(0x30 | (qos << 1)), body.Count);
        body.CopyTo(packet, packet.Length - body.Count);
        return packet;
    }

    private static (byte[] Passed, List<long> Dropped) Feed(byte[] stream, int chunk, int takeAtMost, bool mqtt5 = false)
    {
        var dropped = new List<long>();
        var input = new CheckedInput(64, Limit, mqtt5, dropped.Add);
        var passed = new List<byte>();
        var taken = new byte[takeAtMost];
        for (var at = 0; at < stream.Length;)
        {
            var free = input.Free();
            var n = Math.Min(Math.Min(chunk, free.Count), stream.Length - at);
            stream.AsSpan(at, n).CopyTo(free.AsSpan());
            at += n;
            input.Added(n);
            while (input.Released > 0)
            {
                passed.AddRange(taken.AsSpan(0, input.Take(taken)).ToArray());
            }
        }

        return ([.. passed], dropped);
    }

    // A dropped PUBLISH at QoS 1 or 2 leaves, in its place, a PUBLISH with its packet identifier,
    // the topic "\0" and no payload (MQTT 5: and no properties), for MQTTnet to answer in turn.
    private static byte[] Stub(int qos, ushort packetId, bool mqtt5) =>
        mqtt5 ? [(byte)(0x30 | (qos << 1)), 6, 0, 1, 0, (byte)(packetId >> 8), (byte)packetId, 0]
              : [(byte)(0x30 | (qos << 1)), 5, 0, 1, 0, (byte)(packetId >> 8), (byte)packetId];

    [Theory]
    [InlineData(1, 1, false)]
    [InlineData(2, 5, false)]
    [InlineData(3, 64, true)]
    [InlineData(7, 3, true)]
    [InlineData(64, 1000, false)]
    [InlineData(64, 1000, true)]
    public void Packets_within_the_limit_pass_whole_and_larger_publishes_leave_a_stub_in_their_place_however_the_bytes_arrive(int chunk, int takeAtMost, bool mqtt5)
    {
        var small = Publish(1, 1, 10, 20);                  // within the limit
        var large = Publish(0, 0, 20, 280);                 // over the limit, two-byte length, QoS 0
        var puback = Packet(0x40, 2);
        var huge = Publish(1, 0x12FF, 300, 20_000);         // three-byte length; the topic alone is over the buffer
        var exact = Packet(0x30, Limit - 2);                // exactly the limit, header included
        var twice = Publish(2, 0x00AB, 5, 200);             // QoS 2 over the limit
        byte[] stream = [.. small, .. large, .. puback, .. huge, .. exact, .. twice, .. twice, .. small];

        var (passed, dropped) = Feed(stream, chunk, takeAtMost, mqtt5);

        // The broker gets its answer for those it would send again, in order with the rest.
        Assert.Equal([.. small, .. puback, .. Stub(1, 0x12FF, mqtt5), .. exact, .. Stub(2, 0x00AB, mqtt5), .. Stub(2, 0x00AB, mqtt5), .. small], passed);
        Assert.Equal([large.Length, huge.Length, twice.Length, twice.Length], dropped);
    }

    [Fact]
    public void Any_other_packet_over_the_limit_fails_the_connection()
    {
        var suback = Packet(0x90, 500);
        Assert.Throws<MqttCommunicationException>(() => Feed([.. Packet(0x40, 2), .. suback], 3, 10));
    }

    [Fact]
    public void A_remaining_length_longer_than_four_bytes_fails_the_connection()
    {
        Assert.Throws<MqttProtocolViolationException>(() => Feed([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], 1, 10));
    }
}
