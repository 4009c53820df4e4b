using Gateway.Uplinks;
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

    private static (byte[] Passed, List<long> Dropped) Feed(byte[] stream, int chunk, int takeAtMost)
    {
        var dropped = new List<long>();
        var input = new CheckedInput(64, Limit, dropped.Add);
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

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 5)]
    [InlineData(3, 64)]
    [InlineData(7, 3)]
    [InlineData(64, 1000)]
    public void Packets_within_the_limit_pass_whole_and_larger_publishes_are_cut_out_however_the_bytes_arrive(int chunk, int takeAtMost)
    {
        var small = Packet(0x32, 40);           // PUBLISH, QoS 1
        var large = Packet(0x30, 300);          // PUBLISH over the limit, two-byte length
        var puback = Packet(0x40, 2);
        var huge = Packet(0x32, 20_000);        // three-byte length, far over the buffer too
        var exact = Packet(0x30, Limit - 2);    // exactly the limit, header included
        byte[] stream = [.. small, .. large, .. puback, .. huge, .. exact, .. small];

        var (passed, dropped) = Feed(stream, chunk, takeAtMost);

        Assert.Equal([.. small, .. puback, .. exact, .. small], passed);
        Assert.Equal([large.Length, huge.Length], dropped);
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
