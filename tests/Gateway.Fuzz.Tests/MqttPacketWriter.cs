using System.Text;

namespace Gateway.Fuzz.Tests;

/// <summary>
/// Encodes MQTT packet fields (MQTT 5.0 section 1.5 data types, 3.1.1 the same without
/// properties) into a body, asking <see cref="FuzzChaos"/> at each length and string whether to
/// break it: a string length that lies, ill-formed UTF-8, a non-minimal or oversized variable
/// byte integer. What was broken is noted in the chaos's log.
/// </summary>
internal sealed class MqttPacketWriter(FuzzChaos chaos)
{
    private readonly List<byte> _body = [];

    public int Count => _body.Count;

    public void Byte(int value) => _body.Add((byte)value);

    public void UInt16(int value)
    {
        _body.Add((byte)(value >> 8));
        _body.Add((byte)value);
    }

    public void UInt32(uint value)
    {
        UInt16((int)(value >> 16));
        UInt16((int)(value & 0xFFFF));
    }

    public void Bytes(ReadOnlySpan<byte> bytes) => _body.AddRange(bytes);

    /// <summary>A UTF-8 string (two-byte length first), maybe made ill-formed or given a wrong length.</summary>
    public void String(string value)
    {
        var utf8 = Encoding.UTF8.GetBytes(value).ToList();
        if (chaos.Maybe(15, "bad-utf8"))
        {
            byte[][] bad = [[0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0x00], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80]];
            utf8.InsertRange(chaos.Next(utf8.Count + 1), bad[chaos.Next(bad.Length)]);
        }

        Binary([.. utf8]);
    }

    /// <summary>Binary data (two-byte length first), the length maybe a lie.</summary>
    public void Binary(ReadOnlySpan<byte> value)
    {
        var length = value.Length;
        if (chaos.Maybe(8, "string-length"))
        {
            length = chaos.Next(3) switch
            {
                0 => length + 1 + chaos.Next(8),
                1 => Math.Max(0, length - 1 - chaos.Next(8)),
                _ => 0xFFFF,
            };
        }

        UInt16(length);
        _body.AddRange(value);
    }

    public void VarInt(int value) => WriteVarInt(_body, value, chaos);

    /// <summary>A property block: its length as a variable byte integer, then the properties.</summary>
    public void Properties(MqttPacketWriter properties)
    {
        var length = properties.Count;
        if (chaos.Maybe(8, "property-length"))
        {
            length = chaos.Next(3) switch
            {
                0 => length + 1 + chaos.Next(16),
                1 => Math.Max(0, length - 1 - chaos.Next(4)),
                _ => 268_435_455,
            };
        }

        WriteVarInt(_body, length, chaos);
        _body.AddRange(properties._body);
    }

    /// <summary>The whole packet: type and flags, remaining length (maybe wrong), body.</summary>
    public byte[] Packet(int typeAndFlags)
    {
        var packet = new List<byte>(_body.Count + 5) { (byte)typeAndFlags };
        var length = _body.Count;
        if (chaos.Maybe(10, "remaining-length"))
        {
            length = chaos.Next(4) switch
            {
                0 => length + 1 + chaos.Next(32),
                1 => Math.Max(0, length - 1 - chaos.Next(8)),
                2 => 268_435_455,
                _ => chaos.Next(300_000),
            };
        }

        WriteVarInt(packet, length, chaos);
        packet.AddRange(_body);
        return [.. packet];
    }

    // Section 1.5.5, or a five-byte / non-minimal encoding when chaos says so.
    private static void WriteVarInt(List<byte> bytes, int value, FuzzChaos chaos)
    {
        if (chaos.Maybe(4, "huge-varint"))
        {
            bytes.AddRange([0xFF, 0xFF, 0xFF, 0xFF, (byte)chaos.Next(0x80)]);
            return;
        }

        var nonMinimal = chaos.Maybe(4, "non-minimal-varint");
        do
        {
            var digit = (byte)(value % 128);
            value /= 128;
            if (value > 0 || nonMinimal)
            {
                digit |= 0x80;
            }

            bytes.Add(digit);
        }
        while (value > 0);

        if (nonMinimal)
        {
            bytes.Add(0x00);
        }
    }
}
