using System.Buffers;

namespace Gateway.Mqtt;

/// <summary>What reading a variable byte integer found.</summary>
public enum VarIntStatus
{
    /// <summary>Read; the reader is past it.</summary>
    Complete,

    /// <summary>The input ends inside it: wait for more bytes.</summary>
    Incomplete,

    /// <summary>It runs past four bytes: the peer broke the protocol.</summary>
    Malformed,
}

/// <summary>
/// The one reader of MQTT's variable byte integer, the remaining length of every fixed header
/// and the length of every property block: seven bits a byte, least significant first, at most
/// four bytes (MQTT 5.0 section 1.5.5, https://docs.oasis-open.org/mqtt/mqtt/v5.0/os/mqtt-v5.0-os.html#_Toc3901011;
/// MQTT 3.1.1 section 2.2.3). Callers check the value against their limits before they buffer
/// or allocate what it announces.
/// </summary>
public static class MqttVarInt
{
    public const int MaxBytes = 4;

    /// <summary>Reads one from <paramref name="reader"/>; on anything but Complete the reader's position is unspecified.</summary>
    public static VarIntStatus TryRead(ref SequenceReader<byte> reader, out int value)
    {
        value = 0;
        for (var i = 0; i < MaxBytes; i++)
        {
            if (!reader.TryRead(out var next))
            {
                return VarIntStatus.Incomplete;
            }

            value |= (next & 0x7F) << (7 * i);
            if ((next & 0x80) == 0)
            {
                return VarIntStatus.Complete;
            }
        }

        return VarIntStatus.Malformed;
    }

    /// <summary>Reads one from the start of <paramref name="bytes"/>; <paramref name="length"/> is how many bytes it took.</summary>
    public static VarIntStatus TryRead(ReadOnlySpan<byte> bytes, out int value, out int length)
    {
        value = 0;
        for (var i = 0; i < MaxBytes; i++)
        {
            if (i >= bytes.Length)
            {
                length = 0;
                return VarIntStatus.Incomplete;
            }

            value |= (bytes[i] & 0x7F) << (7 * i);
            if ((bytes[i] & 0x80) == 0)
            {
                length = i + 1;
                return VarIntStatus.Complete;
            }
        }

        length = 0;
        return VarIntStatus.Malformed;
    }

    /// <summary>
    /// Reads a fixed header (the packet type byte, then the remaining length) from the start of
    /// <paramref name="bytes"/>: <paramref name="headerLength"/> is 2 to 5, and the packet is
    /// <paramref name="headerLength"/> + <paramref name="remainingLength"/> bytes long.
    /// </summary>
    public static VarIntStatus TryReadFixedHeader(ReadOnlySpan<byte> bytes, out int remainingLength, out int headerLength)
    {
        headerLength = 0;
        if (bytes.IsEmpty)
        {
            remainingLength = 0;
            return VarIntStatus.Incomplete;
        }

        var status = TryRead(bytes[1..], out remainingLength, out var length);
        if (status == VarIntStatus.Complete)
        {
            headerLength = 1 + length;
        }

        return status;
    }
}
