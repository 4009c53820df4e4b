using System.Buffers;
using System.Text.Unicode;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// The topic name rules MQTTnet does not enforce, checked on a whole packet's raw bytes before
/// MQTTnet sees it: a topic name is at least one character, has no wildcard and is well-formed
/// UTF-8 without U+0000 (MQTT 3.1.1 sections 1.5.3, 3.3.2.1 and 4.7.3; 5.0 sections 1.5.4,
/// 3.3.2.1 and 4.7.3: MQTT-3.3.2-2, MQTT-4.7.3-1); the will topic of a CONNECT too. In MQTT 5 a
/// PUBLISH may leave its topic empty when its topic alias was set earlier on the connection
/// (section 3.3.2.3.4); alias 0 is not allowed (MQTT-3.3.2-8). A packet the rules cannot read
/// (a length past its end) is left to MQTTnet, which refuses it as malformed.
/// </summary>
internal static class MqttTopicRules
{
    /// <summary>Checks a whole PUBLISH (fixed header included) of a connection at <paramref name="protocolLevel"/>.</summary>
    public static GuardViolation CheckPublish(ReadOnlySequence<byte> packet, int headerLength, int protocolLevel, ref HashSet<ushort>? aliases, out string? detail)
    {
        detail = null;
        var reader = new SequenceReader<byte>(packet);
        reader.TryRead(out var typeByte);
        reader.Advance(headerLength - 1);
        if (!TryReadString(ref reader, out var topic))
        {
            return GuardViolation.None;
        }

        var problem = CheckTopic(topic, out detail);
        if (problem != GuardViolation.None)
        {
            return problem;
        }

        var qos = (typeByte >> 1) & 0x03;
        ushort alias = 0;
        var aliasFound = false;
        if (protocolLevel == 5 && (qos == 0 || reader.TryAdvance(2)))
        {
            aliasFound = TryFindTopicAlias(ref reader, out alias);
        }

        if (aliasFound && alias == 0)
        {
            detail = "topic alias 0";
            return GuardViolation.TopicAliasInvalid;
        }

        if (!topic.IsEmpty)
        {
            if (aliasFound)
            {
                (aliases ??= []).Add(alias);
            }

            return GuardViolation.None;
        }

        if (!aliasFound)
        {
            detail = "an empty topic without a topic alias";
            return GuardViolation.TopicNameInvalid;
        }

        if (aliases is null || !aliases.Contains(alias))
        {
            detail = $"an empty topic with topic alias {alias}, which was never set";
            return GuardViolation.ProtocolError;
        }

        return GuardViolation.None;
    }

    /// <summary>Checks the will topic of a whole CONNECT (fixed header included), if it has a will.</summary>
    // MQTT 5.0 section 3.1.2 / 3.1.1 section 3.1.2: protocol name, level, flags, keep alive,
    // [properties], then the payload: client id, [will properties], will topic, ...
    public static GuardViolation CheckConnect(ReadOnlySequence<byte> packet, int headerLength, out string? detail)
    {
        detail = null;
        var reader = new SequenceReader<byte>(packet);
        reader.Advance(headerLength);
        if (!TryReadString(ref reader, out _) || !reader.TryRead(out var level) || !reader.TryRead(out var flags) ||
            (flags & 0x04) == 0 || !reader.TryAdvance(2))
        {
            return GuardViolation.None;
        }

        if (level == 5 && !TrySkipProperties(ref reader))
        {
            return GuardViolation.None;
        }

        if (!TryReadString(ref reader, out _) || (level == 5 && !TrySkipProperties(ref reader)) ||
            !TryReadString(ref reader, out var willTopic))
        {
            return GuardViolation.None;
        }

        var problem = CheckTopic(willTopic, out detail);
        if (problem == GuardViolation.None && willTopic.IsEmpty)
        {
            detail = "an empty will topic";
            return GuardViolation.TopicNameInvalid;
        }

        if (detail is not null)
        {
            detail = "will " + detail;
        }

        return problem;
    }

    // Characters only: an empty topic is the caller's to judge (an MQTT 5 alias may stand in).
    private static GuardViolation CheckTopic(ReadOnlySequence<byte> topic, out string? detail)
    {
        detail = null;
        if (topic.IsEmpty)
        {
            return GuardViolation.None;
        }

        byte[]? rented = null;
        var span = topic.IsSingleSegment ? topic.FirstSpan : (rented = ArrayPool<byte>.Shared.Rent((int)topic.Length)).AsSpan(0, (int)topic.Length);
        try
        {
            if (rented is not null)
            {
                topic.CopyTo(rented);
            }

            // '+' and '#' are ASCII, so they never occur inside a multi-byte UTF-8 sequence.
            if (span.IndexOfAny((byte)'+', (byte)'#') >= 0)
            {
                detail = "a topic with a wildcard ('+' or '#')";
                return GuardViolation.TopicNameInvalid;
            }

            if (!Utf8.IsValid(span) || span.Contains((byte)0))
            {
                detail = "a topic that is not well-formed UTF-8 (or holds U+0000)";
                return GuardViolation.MalformedPacket;
            }

            return GuardViolation.None;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    // MQTT 5.0 section 2.2.2.2: property length, then identifier/value pairs; the topic alias is
    // 0x23, a two-byte integer. False when there is none or the properties cannot be read.
    private static bool TryFindTopicAlias(ref SequenceReader<byte> reader, out ushort alias)
    {
        alias = 0;
        if (!TryReadVarInt(ref reader, out var length) || reader.Remaining < length)
        {
            return false;
        }

        var properties = new SequenceReader<byte>(reader.UnreadSequence.Slice(0, length));
        var found = false;
        while (!properties.End)
        {
            if (!TryReadVarInt(ref properties, out var id))
            {
                return false;
            }

            if (id == 0x23)
            {
                if (!properties.TryReadBigEndian(out short value))
                {
                    return false;
                }

                alias = (ushort)value;
                found = true;
            }
            else if (!TrySkipPropertyValue(ref properties, id))
            {
                return false;
            }
        }

        return found;
    }

    private static bool TrySkipProperties(ref SequenceReader<byte> reader) =>
        TryReadVarInt(ref reader, out var length) && reader.TryAdvance(length);

    // MQTT 5.0 section 2.2.2.2, table 2-4: each property's value type.
    private static bool TrySkipPropertyValue(ref SequenceReader<byte> reader, int id) => id switch
    {
        0x01 or 0x17 or 0x19 or 0x24 or 0x25 or 0x28 or 0x29 or 0x2A => reader.TryAdvance(1),
        0x13 or 0x21 or 0x22 or 0x23 => reader.TryAdvance(2),
        0x02 or 0x11 or 0x18 or 0x27 => reader.TryAdvance(4),
        0x0B => TryReadVarInt(ref reader, out _),
        0x03 or 0x08 or 0x09 or 0x12 or 0x15 or 0x16 or 0x1A or 0x1C or 0x1F => TryReadString(ref reader, out _),
        0x26 => TryReadString(ref reader, out _) && TryReadString(ref reader, out _),
        _ => false,
    };

    // Two-byte length, then that many bytes (UTF-8 string or binary data, section 1.5.4).
    private static bool TryReadString(ref SequenceReader<byte> reader, out ReadOnlySequence<byte> value)
    {
        value = default;
        if (!reader.TryReadBigEndian(out short length) || reader.Remaining < (ushort)length)
        {
            return false;
        }

        value = reader.UnreadSequence.Slice(0, (ushort)length);
        reader.Advance((ushort)length);
        return true;
    }

    // Section 1.5.5: at most four bytes, seven bits each, least significant first.
    private static bool TryReadVarInt(ref SequenceReader<byte> reader, out int value)
    {
        value = 0;
        for (var i = 0; i < 4; i++)
        {
            if (!reader.TryRead(out var next))
            {
                return false;
            }

            value |= (next & 0x7F) << (7 * i);
            if ((next & 0x80) == 0)
            {
                return true;
            }
        }

        return false;
    }

    private static bool TryAdvance(this ref SequenceReader<byte> reader, long count)
    {
        if (reader.Remaining < count)
        {
            return false;
        }

        reader.Advance(count);
        return true;
    }
}
