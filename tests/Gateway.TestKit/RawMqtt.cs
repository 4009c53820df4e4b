using System.Text;

namespace Gateway.TestKit;

/// <summary>Hand-built MQTT packets for scripted peers (MQTT 3.1.1 and 5.0 fixed layouts).</summary>
public static class RawMqtt
{
    public static byte[] Connect(int level, string clientId, bool cleanSession = true, string? willTopic = null, string? willPayload = null, ushort keepAlive = 60)
    {
        var body = new List<byte>();
        WriteString(body, level == 3 ? "MQIsdp" : "MQTT");
        body.Add((byte)level);
        byte flags = 0;
        if (cleanSession)
        {
            flags |= 0x02;
        }

        if (willTopic is not null)
        {
            flags |= 0x04 | 0x08; // will flag, will QoS 1
        }

        body.Add(flags);
        body.Add((byte)(keepAlive >> 8));
        body.Add((byte)keepAlive);
        if (level == 5)
        {
            body.Add(0); // no properties
        }

        WriteString(body, clientId);
        if (willTopic is not null)
        {
            if (level == 5)
            {
                body.Add(0); // no will properties
            }

            WriteString(body, willTopic);
            WriteString(body, willPayload ?? string.Empty);
        }

        return Packet(0x10, body);
    }

    public static byte[] Publish(string topic, byte[] payload, int level, int qos = 0, ushort packetId = 1)
    {
        var body = new List<byte>();
        WriteString(body, topic);
        if (qos > 0)
        {
            body.Add((byte)(packetId >> 8));
            body.Add((byte)packetId);
        }

        if (level == 5)
        {
            body.Add(0);
        }

        body.AddRange(payload);
        return Packet((byte)(0x30 | (qos << 1)), body);
    }

    /// <summary>
    /// A PUBLISH with the topic as raw bytes (so it may be ill-formed UTF-8), the retain flag and,
    /// for MQTT 5, a topic alias property when <paramref name="topicAlias"/> is given.
    /// </summary>
    public static byte[] Publish(byte[] topic, byte[] payload, int level, int qos = 0, ushort packetId = 1, bool retain = false, ushort? topicAlias = null)
    {
        var body = new List<byte> { (byte)(topic.Length >> 8), (byte)topic.Length };
        body.AddRange(topic);
        if (qos > 0)
        {
            body.Add((byte)(packetId >> 8));
            body.Add((byte)packetId);
        }

        if (level == 5)
        {
            if (topicAlias is { } alias)
            {
                body.AddRange([3, 0x23, (byte)(alias >> 8), (byte)alias]); // property length, Topic Alias
            }
            else
            {
                body.Add(0);
            }
        }

        body.AddRange(payload);
        return Packet((byte)(0x30 | (qos << 1) | (retain ? 1 : 0)), body);
    }

    public static byte[] Subscribe(string filter, int qos, ushort packetId = 1)
    {
        var body = new List<byte> { (byte)(packetId >> 8), (byte)packetId };
        WriteString(body, filter);
        body.Add((byte)qos);
        return Packet(0x82, body);
    }

    /// <summary>Just a fixed header that declares <paramref name="remainingLength"/> bytes to follow.</summary>
    public static byte[] Header(byte typeAndFlags, int remainingLength)
    {
        var bytes = new List<byte> { typeAndFlags };
        WriteVarInt(bytes, remainingLength);
        return [.. bytes];
    }

    private static byte[] Packet(byte typeAndFlags, List<byte> body)
    {
        var bytes = new List<byte> { typeAndFlags };
        WriteVarInt(bytes, body.Count);
        bytes.AddRange(body);
        return [.. bytes];
    }

    private static void WriteVarInt(List<byte> bytes, int value)
    {
        do
        {
            var digit = (byte)(value % 128);
            value /= 128;
            if (value > 0)
            {
                digit |= 0x80;
            }

            bytes.Add(digit);
        }
        while (value > 0);
    }

    private static void WriteString(List<byte> bytes, string value)
    {
        var utf8 = Encoding.UTF8.GetBytes(value);
        bytes.Add((byte)(utf8.Length >> 8));
        bytes.Add((byte)utf8.Length);
        bytes.AddRange(utf8);
    }
}
