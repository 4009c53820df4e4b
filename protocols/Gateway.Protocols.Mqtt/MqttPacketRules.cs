using System.Buffers;
using System.Text.Unicode;
using Gateway.Mqtt;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// Rules MQTTnet does not enforce, checked on a whole packet's raw bytes before MQTTnet sees it.
/// A topic name is at least one character, has no wildcard and is well-formed UTF-8 without
/// U+0000 (MQTT 3.1.1 sections 1.5.3, 3.3.2.1 and 4.7.3; 5.0 sections 1.5.4, 3.3.2.1 and 4.7.3:
/// MQTT-3.3.2-2, MQTT-4.7.3-1), in a PUBLISH and as a CONNECT's will topic; in MQTT 5 so are the
/// strings among a PUBLISH's or a will's properties, which are stored with a retained message.
/// An MQTT 5 PUBLISH may leave its topic empty when its topic alias was set earlier on the
/// connection (section 3.3.2.3.4); alias 0 is not allowed (MQTT-3.3.2-8). Packet identifiers are
/// never 0, and a SUBSCRIBE or UNSUBSCRIBE names a filter. A PUBLISH or SUBSCRIBE whose other
/// lengths do not fit is left to MQTTnet, which refuses it as malformed; a will CONNECT is not
/// (see <see cref="CheckConnect"/>).
/// </summary>
internal static class MqttPacketRules
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
        short packetId = 0;
        if (qos > 0 && reader.TryReadBigEndian(out packetId) && packetId == 0)
        {
            detail = "packet identifier 0";
            return GuardViolation.ProtocolError;
        }

        ushort alias = 0;
        var aliasFound = false;
        if (protocolLevel == 5 && (qos == 0 || packetId != 0))
        {
            var scan = ScanProperties(ref reader, out var found);
            if (scan == PropertyScan.IllFormedString)
            {
                detail = "a property string that is not well-formed UTF-8 (or holds U+0000)";
                return GuardViolation.MalformedPacket;
            }

            aliasFound = found is not null;
            alias = found.GetValueOrDefault();
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

    /// <summary>
    /// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE and UNSUBSCRIBE start with a packet identifier,
    /// which is never 0 (MQTT 3.1.1 MQTT-2.3.1-1, 5.0 MQTT-2.2.1-3), and a SUBSCRIBE or
    /// UNSUBSCRIBE names at least one topic filter (MQTT-3.8.3-3, MQTT-3.10.3-2). MQTTnet would
    /// answer either with an acknowledgement it then fails to encode.
    /// </summary>
    public static GuardViolation CheckPacketIdentifier(ReadOnlySequence<byte> packet, int headerLength, int protocolLevel, out string? detail)
    {
        detail = null;
        var reader = new SequenceReader<byte>(packet);
        reader.TryRead(out var typeByte);
        reader.Advance(headerLength - 1);
        if (!reader.TryReadBigEndian(out short packetId))
        {
            return GuardViolation.None;
        }

        if (packetId == 0)
        {
            detail = "packet identifier 0";
            return GuardViolation.ProtocolError;
        }

        if ((typeByte >> 4) is not (8 or 10))
        {
            return GuardViolation.None;
        }

        if (protocolLevel == 5 && !TrySkipProperties(ref reader))
        {
            detail = "properties that run past the end of the packet";
            return GuardViolation.MalformedPacket;
        }

        if (reader.End)
        {
            detail = "no topic filter";
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

        // From here on, a length that does not fit is refused rather than left to MQTTnet, whose
        // reader is lenient (a property may run past its block's declared end): it would find
        // the will topic somewhere else than this check looked.
        const string Unreadable = "a will that cannot be read: a length runs past its field or the packet";
        if (level == 5 && ScanProperties(ref reader, out _) == PropertyScan.Unreadable)
        {
            detail = Unreadable;
            return GuardViolation.MalformedPacket;
        }

        if (!TryReadString(ref reader, out _))
        {
            detail = Unreadable;
            return GuardViolation.MalformedPacket;
        }

        if (level == 5)
        {
            // The will is published like a PUBLISH, so its properties are held to the same rules.
            var scan = ScanProperties(ref reader, out _);
            if (scan != PropertyScan.Ok)
            {
                detail = scan == PropertyScan.IllFormedString ? "a will property string that is not well-formed UTF-8 (or holds U+0000)" : Unreadable;
                return GuardViolation.MalformedPacket;
            }
        }

        if (!TryReadString(ref reader, out var willTopic))
        {
            detail = Unreadable;
            return GuardViolation.MalformedPacket;
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

        // '+' and '#' are ASCII, so they never occur inside a multi-byte UTF-8 sequence.
        if (topic.PositionOf((byte)'+') is not null || topic.PositionOf((byte)'#') is not null)
        {
            detail = "a topic with a wildcard ('+' or '#')";
            return GuardViolation.TopicNameInvalid;
        }

        if (!IsWellFormed(topic))
        {
            detail = "a topic that is not well-formed UTF-8 (or holds U+0000)";
            return GuardViolation.MalformedPacket;
        }

        return GuardViolation.None;
    }

    // MQTT 5.0 section 1.5.4 / 3.1.1 section 1.5.3: well-formed UTF-8 without U+0000.
    private static bool IsWellFormed(ReadOnlySequence<byte> text)
    {
        if (text.IsSingleSegment)
        {
            return Utf8.IsValid(text.FirstSpan) && !text.FirstSpan.Contains((byte)0);
        }

        var rented = ArrayPool<byte>.Shared.Rent((int)text.Length);
        try
        {
            var span = rented.AsSpan(0, (int)text.Length);
            text.CopyTo(span);
            return Utf8.IsValid(span) && !span.Contains((byte)0);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private enum PropertyScan
    {
        Ok,
        Unreadable,
        IllFormedString,
    }

    // MQTT 5.0 section 2.2.2.2: property length, then identifier/value pairs. Finds the topic
    // alias (0x23, a two-byte integer) and checks every UTF-8 string (section 1.5.4: ill-formed
    // UTF-8 or U+0000 make a Malformed Packet). Leaves the reader after the properties.
    private static PropertyScan ScanProperties(ref SequenceReader<byte> reader, out ushort? alias)
    {
        alias = null;
        if (!TryReadVarInt(ref reader, out var length) || reader.Remaining < length)
        {
            return PropertyScan.Unreadable;
        }

        var properties = new SequenceReader<byte>(reader.UnreadSequence.Slice(0, length));
        reader.Advance(length);
        while (!properties.End)
        {
            if (!TryReadVarInt(ref properties, out var id))
            {
                return PropertyScan.Unreadable;
            }

            switch (id)
            {
                case 0x23:
                    if (!properties.TryReadBigEndian(out short value))
                    {
                        return PropertyScan.Unreadable;
                    }

                    alias = (ushort)value;
                    break;
                case 0x03 or 0x08 or 0x12 or 0x15 or 0x1A or 0x1C or 0x1F or 0x26:
                    for (var strings = id == 0x26 ? 2 : 1; strings > 0; strings--)
                    {
                        if (!TryReadString(ref properties, out var text))
                        {
                            return PropertyScan.Unreadable;
                        }

                        if (!IsWellFormed(text))
                        {
                            return PropertyScan.IllFormedString;
                        }
                    }

                    break;
                default:
                    if (!TrySkipPropertyValue(ref properties, id))
                    {
                        return PropertyScan.Unreadable;
                    }

                    break;
            }
        }

        return PropertyScan.Ok;
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

    private static bool TryReadVarInt(ref SequenceReader<byte> reader, out int value) =>
        MqttVarInt.TryRead(ref reader, out value) == VarIntStatus.Complete;

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
