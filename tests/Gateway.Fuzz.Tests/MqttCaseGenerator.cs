namespace Gateway.Fuzz.Tests;

/// <summary>One input: the bytes a fresh connection sends, and how they were made.</summary>
internal sealed record FuzzCase(long Index, byte[] Bytes, string Description)
{
    public string Hex => Convert.ToHexString(Bytes);
}

/// <summary>
/// Structure-aware generation of MQTT 3.1.1 and 5.0 packet sequences: a CONNECT (with
/// properties, a will, credentials), then SUBSCRIBE, PUBLISH at each QoS with properties and
/// topic aliases, PUBACK/PUBREC/PUBREL/PUBCOMP, UNSUBSCRIBE, PINGREQ, AUTH and DISCONNECT, each
/// field a chance to be broken (<see cref="MqttPacketWriter"/>, <see cref="FuzzChaos"/>): QoS 3,
/// reserved flags, alias 0 / unset / huge, subscription identifier 0, wildcard and empty topics,
/// bad UTF-8, lying lengths, huge varints; then byte-level mutations of the whole stream: bit
/// flips, truncation, insertions, deletions, duplications. Case <c>i</c> of seed <c>s</c> is
/// always the same bytes, whatever ran before it.
/// </summary>
internal static class MqttCaseGenerator
{
    private static readonly string[] TopicWords = ["fz", "a", "b", "sensors", "temp", "x", "$SYS", "", "dev/1", "ü"];
    /// <summary>
    /// Cases run in this many lanes, case <c>i</c> in lane <c>i % Lanes</c>, one at a time per
    /// lane. Client ids are per lane, so sessions are reused and taken over by later cases, but
    /// not by a case running at the same time: MQTTnet's takeover of a session whose connection
    /// is still mid-packet races with that connection (reported, not fixed here).
    /// </summary>
    public const int Lanes = 4;

    public static FuzzCase Generate(int seed, long index)
    {
        var random = new Random(HashCode.Combine(seed, index));
        var lane = index % Lanes;
        string[] clientIds = [$"fz{lane}-0", $"fz{lane}-1", $"fz{lane}-2", string.Empty, $"fz{lane}-long-" + new string('i', 40)];
        var chaos = new FuzzChaos(random, random.Next(10) switch { < 3 => 0, < 7 => 1, < 9 => 2, _ => 4 });
        var level = chaos.Chance(80) ? 3 : chaos.Chance(500) ? 4 : 5;
        var stream = new List<byte>();
        var packets = new List<string>();
        var aliases = new List<int>();

        Append(stream, packets, "CONNECT", Connect(chaos, level, clientIds));
        var count = chaos.Next(1, 9);
        for (var i = 0; i < count; i++)
        {
            var (name, bytes) = chaos.Next(20) switch
            {
                < 7 => ("PUBLISH", Publish(chaos, level, aliases)),
                < 10 => ("SUBSCRIBE", Subscribe(chaos, level)),
                10 => ("UNSUBSCRIBE", Unsubscribe(chaos, level)),
                11 => ("PUBACK", Ack(chaos, level, 0x40)),
                12 => ("PUBREC", Ack(chaos, level, 0x50)),
                < 15 => ("PUBREL", Ack(chaos, level, 0x62)),
                15 => ("PUBCOMP", Ack(chaos, level, 0x70)),
                16 => ("PINGREQ", new byte[] { 0xC0, 0x00 }),
                17 => ("AUTH", Auth(chaos)),
                18 => ("CONNECT", Connect(chaos, level, clientIds)), // a second CONNECT is a protocol violation
                _ => ("DISCONNECT", Disconnect(chaos, level)),
            };
            Append(stream, packets, name, bytes);
        }

        MutateStream(chaos, stream);
        var description = $"v{level} chaos {chaos.Level}: {string.Join(' ', packets)}" +
            (chaos.Applied.Count > 0 ? $" | {string.Join(' ', chaos.Applied)}" : string.Empty);
        return new FuzzCase(index, [.. stream], description);
    }

    private static void Append(List<byte> stream, List<string> packets, string name, byte[] bytes)
    {
        stream.AddRange(bytes);
        packets.Add(name);
    }

    // MQTT 5.0 section 3.1 / 3.1.1 section 3.1.
    private static byte[] Connect(FuzzChaos chaos, int level, string[] clientIds)
    {
        var w = new MqttPacketWriter(chaos);
        w.String(level == 3 ? "MQIsdp" : "MQTT");
        w.Byte(chaos.Maybe(10, "protocol-level") ? chaos.Next(256) : level);
        var will = chaos.Chance(300);
        var user = chaos.Chance(200);
        var password = user && chaos.Chance(500);
        var flags = (chaos.Chance(700) ? 0x02 : 0) | (will ? 0x04 | (chaos.Next(3) << 3) | (chaos.Chance(300) ? 0x20 : 0) : 0) |
            (password ? 0x40 : 0) | (user ? 0x80 : 0);
        if (chaos.Maybe(10, "connect-flags"))
        {
            flags = chaos.Next(256); // reserved bit, will QoS 3, flags without their fields
        }

        w.Byte(flags);
        w.UInt16(chaos.Chance(100) ? 0 : chaos.Next(1, 600));
        if (level == 5)
        {
            var p = new MqttPacketWriter(chaos);
            if (chaos.Chance(400))
            {
                p.Byte(0x11); // session expiry interval
                p.UInt32(chaos.Chance(500) ? 0u : (uint)chaos.Next(1, 3600));
            }

            if (chaos.Chance(300))
            {
                p.Byte(0x21); // receive maximum
                p.UInt16(chaos.Maybe(20, "receive-maximum-0") ? 0 : chaos.Next(1, 100));
            }

            if (chaos.Chance(300))
            {
                p.Byte(0x27); // maximum packet size
                p.UInt32(chaos.Maybe(20, "maximum-packet-size-0") ? 0u : (uint)chaos.Next(20, 100_000));
            }

            if (chaos.Chance(300))
            {
                p.Byte(0x22); // topic alias maximum
                p.UInt16(chaos.Next(0, 20));
            }

            if (chaos.Chance(200))
            {
                p.Byte(chaos.Chance(500) ? 0x19 : 0x17); // request response / problem information
                p.Byte(chaos.Maybe(20, "bad-boolean") ? 2 + chaos.Next(254) : chaos.Next(2));
            }

            if (chaos.Chance(100))
            {
                p.Byte(0x15); // authentication method: nothing here supports one
                p.String("SCRAM-SHA-1");
                p.Byte(0x16);
                p.Binary(chaos.RandomBytes(chaos.Next(8)));
            }

            UserProperties(chaos, p);
            ExtraProperty(chaos, p);
            w.Properties(p);
        }

        w.String(chaos.Pick(clientIds));
        if (will)
        {
            if (level == 5)
            {
                var p = new MqttPacketWriter(chaos);
                if (chaos.Chance(300))
                {
                    p.Byte(0x18); // will delay interval
                    p.UInt32((uint)chaos.Next(3));
                }

                if (chaos.Chance(300))
                {
                    p.Byte(0x01); // payload format indicator
                    p.Byte(chaos.Maybe(20, "payload-format") ? chaos.Next(2, 256) : 1);
                }

                if (chaos.Chance(200))
                {
                    p.Byte(0x03); // content type
                    p.String("text/plain");
                }

                ExtraProperty(chaos, p);
                w.Properties(p);
            }

            w.String(Topic(chaos, wildcards: false));
            w.Binary(Payload(chaos));
        }

        if (user)
        {
            w.String("user");
        }

        if (password)
        {
            w.Binary("secret"u8);
        }

        return w.Packet(chaos.Maybe(10, "reserved-flags") ? 0x10 | chaos.Next(1, 16) : 0x10);
    }

    // Section 3.3.
    private static byte[] Publish(FuzzChaos chaos, int level, List<int> aliases)
    {
        var qos = chaos.Maybe(15, "qos3") ? 3 : chaos.Next(3);
        var w = new MqttPacketWriter(chaos);
        int? alias = null;
        var topic = Topic(chaos, wildcards: false);
        if (level == 5 && chaos.Chance(250))
        {
            if (aliases.Count > 0 && chaos.Chance(500))
            {
                alias = chaos.Pick(aliases);
                topic = string.Empty; // the alias stands in for the topic
            }
            else
            {
                alias = chaos.Next(1, 10);
                aliases.Add(alias.Value);
            }

            if (chaos.Maybe(20, "alias0"))
            {
                alias = 0;
            }
            else if (chaos.Maybe(20, "alias-unset"))
            {
                alias = chaos.Next(100, 0x10000);
                topic = string.Empty;
            }
        }

        w.String(topic);
        if (qos > 0)
        {
            w.UInt16(chaos.Maybe(10, "packet-id-0") ? 0 : chaos.Next(1, 0x10000));
        }

        if (level == 5)
        {
            var p = new MqttPacketWriter(chaos);
            if (alias is { } a)
            {
                p.Byte(0x23);
                p.UInt16(a);
            }

            if (chaos.Chance(200))
            {
                p.Byte(0x01);
                p.Byte(chaos.Maybe(20, "payload-format") ? chaos.Next(2, 256) : chaos.Next(2));
            }

            if (chaos.Chance(200))
            {
                p.Byte(0x02); // message expiry interval
                p.UInt32((uint)chaos.Next(0, 100));
            }

            if (chaos.Chance(200))
            {
                p.Byte(0x08); // response topic
                p.String(chaos.Maybe(20, "response-topic-wildcard") ? "fz/#" : "fz/reply");
                p.Byte(0x09); // correlation data
                p.Binary(chaos.RandomBytes(chaos.Next(16)));
            }

            if (chaos.Chance(150))
            {
                p.Byte(0x03);
                p.String("application/json");
            }

            if (chaos.Maybe(20, "publish-subscription-id"))
            {
                p.Byte(0x0B); // only a server may send this in a PUBLISH
                p.VarInt(chaos.Next(0, 5));
            }

            UserProperties(chaos, p);
            ExtraProperty(chaos, p);
            w.Properties(p);
        }

        w.Bytes(Payload(chaos));
        var flags = (qos << 1) | (chaos.Chance(200) ? 0x01 : 0) | (chaos.Chance(50) ? 0x08 : 0);
        return w.Packet(0x30 | flags);
    }

    // Section 3.8.
    private static byte[] Subscribe(FuzzChaos chaos, int level)
    {
        var w = new MqttPacketWriter(chaos);
        w.UInt16(chaos.Maybe(10, "packet-id-0") ? 0 : chaos.Next(1, 0x10000));
        if (level == 5)
        {
            var p = new MqttPacketWriter(chaos);
            if (chaos.Chance(300))
            {
                p.Byte(0x0B); // subscription identifier, 1 .. 268,435,455
                p.VarInt(chaos.Maybe(30, "subid0") ? 0 : chaos.Next(1, 1000));
            }

            UserProperties(chaos, p);
            ExtraProperty(chaos, p);
            w.Properties(p);
        }

        var filters = chaos.Maybe(10, "empty-subscribe") ? 0 : chaos.Next(1, 4);
        for (var i = 0; i < filters; i++)
        {
            w.String(Topic(chaos, wildcards: true));
            var options = chaos.Next(3);
            if (level == 5)
            {
                options |= (chaos.Next(2) << 2) | (chaos.Next(2) << 3) | (chaos.Next(3) << 4); // no local, RAP, retain handling
            }

            if (chaos.Maybe(15, "subscription-options"))
            {
                options = chaos.Next(256); // QoS 3, retain handling 3, reserved bits
            }

            w.Byte(options);
        }

        return w.Packet(chaos.Maybe(10, "reserved-flags") ? 0x80 | chaos.Next(16) : 0x82);
    }

    // Section 3.10.
    private static byte[] Unsubscribe(FuzzChaos chaos, int level)
    {
        var w = new MqttPacketWriter(chaos);
        w.UInt16(chaos.Next(1, 0x10000));
        if (level == 5)
        {
            var p = new MqttPacketWriter(chaos);
            UserProperties(chaos, p);
            ExtraProperty(chaos, p);
            w.Properties(p);
        }

        var filters = chaos.Maybe(10, "empty-unsubscribe") ? 0 : chaos.Next(1, 3);
        for (var i = 0; i < filters; i++)
        {
            w.String(Topic(chaos, wildcards: true));
        }

        return w.Packet(chaos.Maybe(10, "reserved-flags") ? 0xA0 | chaos.Next(16) : 0xA2);
    }

    // Sections 3.4 - 3.7: packet id, then (MQTT 5) reason code and properties.
    private static byte[] Ack(FuzzChaos chaos, int level, int typeAndFlags)
    {
        var w = new MqttPacketWriter(chaos);
        w.UInt16(chaos.Next(0, 20));
        if (level == 5 && chaos.Chance(500))
        {
            w.Byte(chaos.Chance(700) ? 0 : chaos.Next(256));
            var p = new MqttPacketWriter(chaos);
            if (chaos.Chance(300))
            {
                p.Byte(0x1F); // reason string
                p.String("because");
            }

            UserProperties(chaos, p);
            ExtraProperty(chaos, p);
            w.Properties(p);
        }

        if (chaos.Maybe(10, "reserved-flags"))
        {
            typeAndFlags ^= chaos.Next(1, 16);
        }

        return w.Packet(typeAndFlags);
    }

    // Section 3.15 (MQTT 5 only, but sent at any level).
    private static byte[] Auth(FuzzChaos chaos)
    {
        var w = new MqttPacketWriter(chaos);
        if (chaos.Chance(800))
        {
            w.Byte(chaos.Pick(new[] { 0x00, 0x18, 0x19, chaos.Next(256) }));
            var p = new MqttPacketWriter(chaos);
            p.Byte(0x15);
            p.String("SCRAM-SHA-1");
            if (chaos.Chance(500))
            {
                p.Byte(0x16);
                p.Binary(chaos.RandomBytes(chaos.Next(32)));
            }

            ExtraProperty(chaos, p);
            w.Properties(p);
        }

        return w.Packet(chaos.Maybe(10, "reserved-flags") ? 0xF0 | chaos.Next(1, 16) : 0xF0);
    }

    // Section 3.14.
    private static byte[] Disconnect(FuzzChaos chaos, int level)
    {
        var w = new MqttPacketWriter(chaos);
        if (level == 5 && chaos.Chance(600))
        {
            w.Byte(chaos.Pick(new[] { 0x00, 0x04, 0x80, chaos.Next(256) }));
            var p = new MqttPacketWriter(chaos);
            if (chaos.Chance(300))
            {
                p.Byte(0x11); // session expiry: may not go from 0 to non-zero
                p.UInt32((uint)chaos.Next(0, 100));
            }

            if (chaos.Chance(200))
            {
                p.Byte(0x1C); // server reference: only a server sends one
                p.String("elsewhere");
            }

            ExtraProperty(chaos, p);
            w.Properties(p);
        }

        return w.Packet(chaos.Maybe(10, "reserved-flags") ? 0xE0 | chaos.Next(1, 16) : 0xE0);
    }

    private static void UserProperties(FuzzChaos chaos, MqttPacketWriter p)
    {
        var count = chaos.Chance(200) ? chaos.Next(1, 4) : 0;
        for (var i = 0; i < count; i++)
        {
            p.Byte(0x26);
            p.String("k" + i);
            p.String(chaos.Chance(100) ? new string('v', chaos.Next(200, 2000)) : "v");
        }
    }

    // A property that does not belong: unknown, duplicated, or of another packet type.
    private static void ExtraProperty(FuzzChaos chaos, MqttPacketWriter p)
    {
        if (chaos.Maybe(10, "unknown-property"))
        {
            p.Byte(chaos.Pick(new[] { 0x00, 0x04, 0x7F, 0xFF, 0x2B }));
            p.Bytes(chaos.RandomBytes(chaos.Next(4)));
        }

        if (chaos.Maybe(10, "duplicate-property"))
        {
            p.Byte(0x21); // receive maximum, twice
            p.UInt16(5);
            p.Byte(0x21);
            p.UInt16(6);
        }
    }

    private static string Topic(FuzzChaos chaos, bool wildcards)
    {
        if (chaos.Maybe(10, "empty-topic"))
        {
            return string.Empty;
        }

        var levels = chaos.Next(1, 4);
        var parts = new List<string>(levels + 1) { "fz" };
        for (var i = 0; i < levels; i++)
        {
            parts.Add(wildcards && chaos.Chance(250) ? (i == levels - 1 && chaos.Chance(500) ? "#" : "+") : chaos.Pick(TopicWords));
        }

        if (chaos.Maybe(10, "wildcard-topic") || (wildcards && chaos.Maybe(10, "bad-filter")))
        {
            parts.Insert(chaos.Next(parts.Count + 1), chaos.Pick(new[] { "#", "+", "a#", "+b", "#/x" }));
        }

        if (chaos.Chance(30))
        {
            parts[0] = chaos.Pick(new[] { "$SYS", "#", "+", "healthy" }); // outside the fuzz prefix
        }

        return string.Join('/', parts);
    }

    private static byte[] Payload(FuzzChaos chaos) =>
        chaos.RandomBytes(chaos.Chance(50) ? chaos.Next(1000, 5000) : chaos.Next(0, 48));

    // Byte-level mutations of the whole stream, after the structure is laid out.
    private static void MutateStream(FuzzChaos chaos, List<byte> stream)
    {
        if (chaos.Level == 0)
        {
            return;
        }

        var rounds = chaos.Next(chaos.Level + 1);
        for (var r = 0; r < rounds && stream.Count > 0; r++)
        {
            switch (chaos.Next(6))
            {
                case 0:
                case 1:
                    chaos.Note("bitflip");
                    for (var i = chaos.Next(1, 5); i > 0; i--)
                    {
                        stream[chaos.Next(stream.Count)] ^= (byte)(1 << chaos.Next(8));
                    }

                    break;
                case 2:
                    chaos.Note("truncate");
                    var keep = chaos.Next(stream.Count); // a prefix, cut anywhere
                    stream.RemoveRange(keep, stream.Count - keep);
                    break;
                case 3:
                    chaos.Note("insert");
                    stream.InsertRange(chaos.Next(stream.Count + 1), chaos.RandomBytes(chaos.Next(1, 8)));
                    break;
                case 4:
                    chaos.Note("delete");
                    var start = chaos.Next(stream.Count);
                    stream.RemoveRange(start, Math.Min(stream.Count - start, chaos.Next(1, 8)));
                    break;
                default:
                    chaos.Note("duplicate");
                    var from = chaos.Next(stream.Count);
                    var length = Math.Min(stream.Count - from, chaos.Next(1, 32));
                    stream.InsertRange(chaos.Next(stream.Count + 1), stream.GetRange(from, length));
                    break;
            }
        }
    }
}
