using System.Buffers;
using System.IO.Pipelines;
using Gateway.Mqtt;

namespace Gateway.Protocols.Mqtt;

internal enum GuardViolation
{
    None,
    TooLarge,
    MalformedLength,

    /// <summary>A wildcard in a topic name, or an empty one without a topic alias (MQTT 5 0x90).</summary>
    TopicNameInvalid,

    /// <summary>Topic alias 0 (MQTT 5 0x94).</summary>
    TopicAliasInvalid,

    /// <summary>An empty topic whose alias was never set, packet identifier 0, a SUBSCRIBE or UNSUBSCRIBE without a filter (MQTT 5 0x82).</summary>
    ProtocolError,

    /// <summary>A topic or property string that is not well-formed UTF-8, or a will CONNECT whose lengths do not fit (MQTT 5 0x81).</summary>
    MalformedPacket,
}

/// <summary>
/// Sits between Kestrel's transport and MQTTnet. It reads each packet's fixed header
/// (MQTT 5.0 section 2.1.4: type byte, then a variable byte integer of at most four bytes) as
/// soon as it arrives and refuses a declared length over the limit before MQTTnet buffers the
/// body; a whole packet is held to the rules MQTTnet does not check (<see cref="MqttPacketRules"/>).
/// MQTTnet gets the packets before the refused one, then sees the input end and closes the
/// session (publishing any will); nothing of the refused packet reaches it. The connection
/// handler sends the MQTT 5 reason code afterwards. Output completion is deferred so that
/// reason code can still be written.
/// </summary>
internal sealed partial class MqttPacketGuard : PipeReader, IDuplexPipe
{
    // MQTT 5.0 section 2.1.2, by the fixed header's high nibble.
    private static readonly string[] PacketTypeNames =
    [
        "reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
        "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
    ];

    private readonly PipeReader _input;
    private readonly MqttOutput _output;
    private readonly int _maxPacketSize;

    private ReadOnlySequence<byte> _lastBuffer;
    private long _bufferStart;   // absolute stream offset of _lastBuffer.Start
    private long _nextHeader;    // absolute stream offset of the next packet's first byte
    private long _stopAt = long.MaxValue; // absolute stream offset of the refused packet
    private int _packets;
    private HashSet<ushort>? _topicAliases; // MQTT 5 aliases the client has set on this connection

    public MqttPacketGuard(IDuplexPipe transport, int maxPacketSize)
    {
        _input = transport.Input;
        _output = new MqttOutput(transport.Output);
        _maxPacketSize = maxPacketSize;
    }

    public GuardViolation Violation { get; private set; }

    public long ViolatingLength { get; private set; }

    /// <summary>What <see cref="MqttPacketRules"/> found wrong with a refused packet, for the log.</summary>
    public string? ViolationDetail { get; private set; }

    /// <summary>The type of the refused packet, for the log.</summary>
    public string? ViolatingPacketType { get; private set; }

    /// <summary>The CONNECT packet's protocol level: 3 (3.1), 4 (3.1.1) or 5; 0 until seen.</summary>
    public int ProtocolLevel { get; private set; }

    /// <summary>True once the first packet (CONNECT) has arrived whole.</summary>
    public bool ConnectReceived { get; private set; }

    PipeReader IDuplexPipe.Input => this;

    PipeWriter IDuplexPipe.Output => _output;

    public PipeWriter RawOutput => _output.Inner;

    /// <summary>The writer MQTTnet sends through.</summary>
    public MqttOutput Output => _output;

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_bufferStart >= _stopAt)
        {
            return; // the read handed out nothing of the transport's buffer (see Inspect)
        }

        _bufferStart += _lastBuffer.Slice(_lastBuffer.Start, consumed).Length;
        _input.AdvanceTo(consumed, examined);
    }

    public override void CancelPendingRead() => _input.CancelPendingRead();

    public override void Complete(Exception? exception = null) => _input.Complete(exception);

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_bufferStart >= _stopAt)
        {
            return new ReadResult(default, isCanceled: false, isCompleted: true);
        }

        var result = await _input.ReadAsync(cancellationToken);
        return Inspect(result);
    }

    public override bool TryRead(out ReadResult result)
    {
        if (_bufferStart >= _stopAt)
        {
            result = new ReadResult(default, isCanceled: false, isCompleted: true);
            return true;
        }

        if (!_input.TryRead(out result))
        {
            return false;
        }

        result = Inspect(result);
        return true;
    }

    /// <summary>The bytes that tell an MQTT 5 client why it is being disconnected, if any.</summary>
    public byte[]? RefusalPacket()
    {
        if (Violation == GuardViolation.None || ProtocolLevel != 5)
        {
            return null;
        }

        var reason = Violation switch
        {
            GuardViolation.TooLarge => (byte)0x95,           // Packet too large
            GuardViolation.TopicNameInvalid => (byte)0x90,   // Topic Name invalid
            GuardViolation.TopicAliasInvalid => (byte)0x94,  // Topic Alias invalid
            GuardViolation.ProtocolError => (byte)0x82,      // Protocol Error
            _ => (byte)0x81,                                 // Malformed Packet
        };
        return ConnectReceived
            ? [0xE0, 0x02, reason, 0x00]          // DISCONNECT, reason, no properties (MQTT 5.0 section 3.14)
            : [0x20, 0x03, 0x00, reason, 0x00];   // CONNACK, no session, reason, no properties (section 3.2)
    }

    private ReadResult Inspect(ReadResult result)
    {
        var buffer = result.Buffer;
        _lastBuffer = buffer;
        while (Violation == GuardViolation.None)
        {
            var offset = _nextHeader - _bufferStart;
            if (offset >= buffer.Length)
            {
                break;
            }

            var reader = new SequenceReader<byte>(buffer.Slice(offset));
            reader.TryRead(out var typeByte);
            var header = MqttVarInt.TryRead(ref reader, out var remaining);
            if (header == VarIntStatus.Incomplete)
            {
                break; // fixed header not complete yet
            }

            if (header == VarIntStatus.Malformed)
            {
                Refuse(offset, GuardViolation.MalformedLength, 0);
                break;
            }

            var headerLength = (int)reader.Consumed;
            var packetLength = headerLength + (long)remaining;
            if (_packets == 0 && (typeByte >> 4) == 1)
            {
                ReadProtocolLevel(reader);
            }

            if (packetLength > _maxPacketSize)
            {
                Refuse(offset, GuardViolation.TooLarge, packetLength);
                break;
            }

            if (offset + packetLength > buffer.Length)
            {
                break; // body still arriving; its size is known to be acceptable
            }

            if (CheckPacket(buffer.Slice(offset, packetLength), typeByte, headerLength) is var problem and not GuardViolation.None)
            {
                Refuse(offset, problem, packetLength);
                break;
            }

            if (_packets++ == 0)
            {
                ConnectReceived = true;
            }

            _nextHeader += packetLength;
        }

        if (Violation == GuardViolation.None)
        {
            var whole = Math.Max(0, _nextHeader - _bufferStart);
            if (result.IsCompleted && whole < buffer.Length)
            {
                // The peer ended its input part-way through a packet. MQTTnet's reader would wait
                // for the rest, which cannot come, by re-reading the completed input in a busy
                // loop (a core at 100 % until the session ends); it gets the whole packets, then
                // the end of the input.
                return new ReadResult(buffer.Slice(0, whole), result.IsCanceled, isCompleted: true);
            }

            return result;
        }

        // MQTTnet gets the whole packets before the refused one, then the end of the input.
        var before = _stopAt - _bufferStart;
        if (before <= 0)
        {
            _input.AdvanceTo(buffer.Start);
            return new ReadResult(default, isCanceled: false, isCompleted: true);
        }

        return new ReadResult(buffer.Slice(0, before), isCanceled: false, isCompleted: true);
    }

    private GuardViolation CheckPacket(ReadOnlySequence<byte> packet, byte typeByte, int headerLength)
    {
        string? detail = null;
        var violation = GuardViolation.None;
        switch (typeByte >> 4)
        {
            case 1 when _packets == 0:
                violation = MqttPacketRules.CheckConnect(packet, headerLength, out detail);
                break;
            case 3 when _packets > 0:
                violation = MqttPacketRules.CheckPublish(packet, headerLength, ProtocolLevel, ref _topicAliases, out detail);
                break;
            case 4 or 5 or 6 or 7 or 8 or 10 when _packets > 0:
                violation = MqttPacketRules.CheckPacketIdentifier(packet, headerLength, ProtocolLevel, out detail);
                break;
        }

        ViolationDetail = detail;
        ViolatingPacketType = PacketTypeNames[typeByte >> 4];
        return violation;
    }

    // CONNECT variable header: protocol name (two-byte length + "MQTT" or "MQIsdp"), then level.
    private void ReadProtocolLevel(SequenceReader<byte> reader)
    {
        if (ProtocolLevel == 0 && reader.TryReadBigEndian(out short nameLength) && nameLength is > 0 and < 16 &&
            reader.Remaining > nameLength)
        {
            reader.Advance(nameLength);
            reader.TryRead(out var level);
            ProtocolLevel = level;
        }
    }

    private void Refuse(long offset, GuardViolation violation, long length)
    {
        Violation = violation;
        ViolatingLength = length;
        _stopAt = _bufferStart + offset;
    }
}
