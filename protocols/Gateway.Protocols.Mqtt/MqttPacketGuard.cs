using System.Buffers;
using System.IO.Pipelines;

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

    /// <summary>An empty topic whose alias was never set (MQTT 5 0x82).</summary>
    ProtocolError,

    /// <summary>A topic that is not well-formed UTF-8 (MQTT 5 0x81).</summary>
    MalformedPacket,
}

/// <summary>
/// Sits between Kestrel's transport and MQTTnet. It reads each packet's fixed header
/// (MQTT 5.0 section 2.1.4: type byte, then a variable byte integer of at most four bytes) as
/// soon as it arrives and refuses a declared length over the limit before MQTTnet buffers the
/// body; a whole PUBLISH or CONNECT has its topic names checked (<see cref="MqttTopicRules"/>).
/// MQTTnet gets the packets before the refused one, then sees the input end and closes the
/// session (publishing any will); nothing of the refused packet reaches it. The connection
/// handler sends the MQTT 5 reason code afterwards. Output completion is deferred so that
/// reason code can still be written.
/// </summary>
internal sealed class MqttPacketGuard : PipeReader, IDuplexPipe
{
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

    /// <summary>What was wrong with a refused topic name, for the log.</summary>
    public string? ViolationDetail { get; private set; }

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
            long remaining = 0;
            var headerLength = 1;
            var multiplier = 1;
            byte next;
            do
            {
                if (!reader.TryRead(out next))
                {
                    return result; // fixed header not complete yet
                }

                if (headerLength == 5)
                {
                    Refuse(offset, GuardViolation.MalformedLength, 0);
                    break;
                }

                remaining += (next & 0x7F) * (long)multiplier;
                multiplier *= 128;
                headerLength++;
            }
            while ((next & 0x80) != 0);

            if (Violation != GuardViolation.None)
            {
                break;
            }

            var packetLength = headerLength + remaining;
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

            if (CheckTopics(buffer.Slice(offset, packetLength), typeByte, headerLength) is var problem and not GuardViolation.None)
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

    private GuardViolation CheckTopics(ReadOnlySequence<byte> packet, byte typeByte, int headerLength)
    {
        string? detail = null;
        var violation = GuardViolation.None;
        if ((typeByte >> 4) == 1 && _packets == 0)
        {
            violation = MqttTopicRules.CheckConnect(packet, headerLength, out detail);
        }
        else if ((typeByte >> 4) == 3 && _packets > 0)
        {
            violation = MqttTopicRules.CheckPublish(packet, headerLength, ProtocolLevel, ref _topicAliases, out detail);
        }

        ViolationDetail = detail;
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

    /// <summary>
    /// Forwards everything but completion, which the connection handler does last, and a flush
    /// the sender has said another packet follows at once (<see cref="FlushWithNext"/>).
    /// </summary>
    internal sealed class MqttOutput(PipeWriter inner) : PipeWriter
    {
        // Set and consumed on the connection's send loop (MQTTnet sends one packet at a time).
        private bool _flushWithNext;

        public PipeWriter Inner => inner;

        /// <summary>
        /// The next flush is left to the packet after it: a run of acknowledgements released by
        /// one commit leaves in one socket write instead of one each. Only for a packet whose
        /// successor is already on its way to the send loop, or it would wait for traffic.
        /// </summary>
        public void FlushWithNext() => _flushWithNext = true;

        private bool SkipFlush()
        {
            if (!_flushWithNext)
            {
                return false;
            }

            _flushWithNext = false;
            return true;
        }

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override void Advance(int bytes) => inner.Advance(bytes);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null)
        {
        }

        public override ValueTask CompleteAsync(Exception? exception = null) => ValueTask.CompletedTask;

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) =>
            SkipFlush() ? default : inner.FlushAsync(cancellationToken);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            if (!SkipFlush())
            {
                return inner.WriteAsync(source, cancellationToken);
            }

            inner.Write(source.Span);
            return default;
        }
    }
}
