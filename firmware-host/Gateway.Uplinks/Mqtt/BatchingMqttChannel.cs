using System.Buffers;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Gateway.Mqtt;
using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Channel;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Implementations;

namespace Gateway.Uplinks.Mqtt;

/// <summary>
/// The uplink's TCP channel. MQTTnet's own channel makes one socket write per packet and one
/// socket read per header and body; draining a backlog that is a syscall per few hundred bytes
/// both ways. This one queues writes and sends everything queued in one write (the packets of a
/// whole in-flight window usually leave together), and reads through a 64 KiB buffer.
/// What the connection's read loop writes while it handles its input (the publishes that the
/// acknowledgements in it made room for) is sent by the read loop itself when it has handled
/// all of it, before it waits for more; what other threads write is sent by a flush loop on the
/// thread pool. A write error is reported by the next write; the read side sees the dead socket
/// anyway, so MQTTnet notices a lost connection as before.
/// Every packet's fixed header is checked before any of the packet is handed to MQTTnet, which
/// would otherwise allocate whatever length the broker announces: a PUBLISH over the uplink's
/// MaxPacketSize is dropped as it streams in (never buffered whole) and, at QoS 1 or 2, replaced
/// by a stub for MQTTnet to answer in turn (<see cref="CheckedInput"/>); any other packet over it
/// closes the connection.
/// </summary>
internal sealed class BatchingMqttChannel : IMqttChannel, IDisposable
{
    private const int ReadBufferSize = 64 * 1024;
    private const int MaxQueuedBytes = 1024 * 1024; // a writer waits for the flush beyond this

    private readonly MqttTcpChannel _inner;
    private readonly Lock _sync = new();
    private readonly CheckedInput _input;
    private ArrayBufferWriter<byte> _queued = new(16 * 1024);
    private ArrayBufferWriter<byte> _sending = new(16 * 1024);
    private TaskCompletionSource? _flushing; // under _sync: set while a flush runs
    private Exception? _writeError;
    private int _readerThread; // the thread handling input just read; 0 while the read loop waits

    public BatchingMqttChannel(MqttClientOptions options, int maxPacketSize, Action<long>? dropped)
    {
        _inner = new MqttTcpChannel(options);
        _input = new CheckedInput(ReadBufferSize, maxPacketSize, options.ProtocolVersion == MqttProtocolVersion.V500, dropped);
    }

    public X509Certificate2 ClientCertificate => _inner.ClientCertificate;

    public EndPoint RemoteEndPoint => _inner.RemoteEndPoint;

    public EndPoint LocalEndPoint => _inner.LocalEndPoint;

    public bool IsSecureConnection => _inner.IsSecureConnection;

    public Task ConnectAsync(CancellationToken cancellationToken) => _inner.ConnectAsync(cancellationToken);

    public async Task DisconnectAsync(CancellationToken cancellationToken)
    {
        Task flushing;
        lock (_sync)
        {
            flushing = _flushing?.Task ?? Task.CompletedTask;
        }

        await flushing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // a DISCONNECT queued last goes out
        await _inner.DisconnectAsync(cancellationToken);
    }

    public async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        while (_input.Released == 0)
        {
            Volatile.Write(ref _readerThread, 0);
            _ = FlushAsync(yieldFirst: false); // what handling the last input queued leaves now, from here, without waiting for the peer
            var free = _input.Free();
            var read = await _inner.ReadAsync(free.Array!, free.Offset, free.Count, cancellationToken);
            if (read == 0)
            {
                return 0; // closed
            }

            _input.Added(read);
        }

        var n = _input.Take(buffer.AsSpan(offset, count));
        Volatile.Write(ref _readerThread, Environment.CurrentManagedThreadId);
        return n;
    }

    public Task WriteAsync(ReadOnlySequence<byte> buffer, bool isEndOfPacket, CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            if (_writeError is { } error)
            {
                return Task.FromException(new MQTTnet.Exceptions.MqttCommunicationException(error));
            }

            foreach (var segment in buffer)
            {
                _queued.Write(segment.Span);
            }

            var over = _queued.WrittenCount > MaxQueuedBytes;
            if (_flushing is null && (over || Volatile.Read(ref _readerThread) != Environment.CurrentManagedThreadId))
            {
                _ = FlushAsync(yieldFirst: true); // returns at its first await: nothing is sent under the lock
            }

            return over && _flushing is { } flushing ? flushing.Task.WaitAsync(cancellationToken) : Task.CompletedTask;
        }
    }

    public void Dispose() => _inner.Dispose();

    // Sends everything queued, until nothing is; one flush at a time.
    private async Task FlushAsync(bool yieldFirst)
    {
        TaskCompletionSource flushing;
        lock (_sync)
        {
            if (_flushing is not null || _queued.WrittenCount == 0)
            {
                return;
            }

            _flushing = flushing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        if (yieldFirst)
        {
            await Task.Yield(); // let the writer queue the rest of its burst first
        }

        while (true)
        {
            lock (_sync)
            {
                if (_queued.WrittenCount == 0)
                {
                    _flushing = null;
                    flushing.SetResult();
                    return;
                }

                (_queued, _sending) = (_sending, _queued);
            }

            try
            {
                await _inner.WriteAsync(new ReadOnlySequence<byte>(_sending.WrittenMemory), true, CancellationToken.None);
            }
#pragma warning disable CA1031 // Kept and reported to the next writer, as MQTTnet's channel would have thrown it.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                lock (_sync)
                {
                    _writeError = ex;
                    _queued.ResetWrittenCount();
                    _flushing = null;
                    flushing.SetResult();
                }

                return;
            }
            finally
            {
                _sending.ResetWrittenCount();
            }
        }
    }
}

/// <summary>
/// What the uplink's connection read and has not handed to MQTTnet yet, checked packet by packet:
/// a packet's bytes are released only once its fixed header was read and its length is within
/// the limit (MQTTnet allocates whatever length a header announces). A PUBLISH over the limit is
/// cut out of the buffer as it streams in (<c>dropped</c> is told its size), its packet identifier
/// read on the way; any other packet over it fails the connection.
/// </summary>
/// <remarks>
/// A dropped PUBLISH at QoS 1 or 2 leaves a stub in its place: a PUBLISH with the same packet
/// identifier, the topic <see cref="DroppedTopic"/> and no payload. MQTTnet answers it (PUBACK or
/// PUBREC) once the uplink has handled it, in order with the publishes around it, as MQTT asks;
/// the uplink answers with reason 0x83, as mosquitto answers a message over its
/// message_size_limit. Unanswered, the broker would keep the message in flight to the uplink
/// (mosquitto holds back everything after 20 of them) and send it again on every reconnect.
/// </remarks>
internal sealed class CheckedInput(int bufferSize, int maxPacketSize, bool mqtt5, Action<long>? dropped)
{
    /// <summary>The topic of a dropped PUBLISH's stub: no broker sends it (MQTT forbids U+0000 in a topic).</summary>
    public const string DroppedTopic = "\0";

    private readonly byte[] _buffer = new byte[bufferSize];
    private readonly Queue<Stub> _stubs = new();
    private int _offset;
    private int _count; // bytes read from _offset on, not taken yet
    private int _released; // bytes from _offset on that may be taken
    private long _taken; // bytes of the buffer taken so far (stubs not counted)
    private int _stubBytes; // bytes of stubs not taken yet
    private long _passBody; // body bytes of the current packet still to release
    private long _skipBody; // body bytes of a dropped PUBLISH still to discard

    // The dropped PUBLISH's variable header: topic length (2 bytes), topic, packet identifier (2
    // bytes, QoS 1 and 2 only). _skipped counts its body bytes discarded so far; _watchUntil is
    // where the identifier ends (0: nothing to read).
    private long _skipped;
    private long _watchUntil;
    private int _droppedQos;
    private int _topicLength;
    private int _packetId;

    /// <summary>How many bytes may be taken now.</summary>
    public int Released => _released + _stubBytes;

    /// <summary>Room to read into (what is not taken yet, at most the start of a header, moves to the front).</summary>
    public ArraySegment<byte> Free()
    {
        Buffer.BlockCopy(_buffer, _offset, _buffer, 0, _count);
        _offset = 0;
        return new ArraySegment<byte>(_buffer, _count, _buffer.Length - _count);
    }

    /// <summary><paramref name="read"/> bytes were read into <see cref="Free"/>.</summary>
    public void Added(int read)
    {
        _count += read;
        var at = _offset + _released;
        var end = _offset + _count;
        while (at < end)
        {
            if (_passBody > 0)
            {
                var n = (int)Math.Min(_passBody, end - at);
                _passBody -= n;
                _released += n;
                at += n;
            }
            else if (_skipBody > 0)
            {
                var n = (int)Math.Min(_skipBody, end - at);
                Watch(_buffer.AsSpan(at, n));
                Cut(at, n, ref end);
                _skipBody -= n;
            }
            else if (!TryReadFixedHeader(_buffer.AsSpan(at, end - at), out var headerLength, out var bodyLength))
            {
                return; // the rest of the header is still to come
            }
            else if (headerLength + bodyLength <= maxPacketSize)
            {
                _released += headerLength;
                at += headerLength;
                _passBody = bodyLength;
            }
            else if ((_buffer[at] & 0xF0) == 0x30)
            {
                _droppedQos = (_buffer[at] >> 1) & 0x03;
                _skipped = 0;
                _watchUntil = _droppedQos is 1 or 2 ? 4 : 0; // the topic's length first
                Cut(at, headerLength, ref end); // a PUBLISH: dropped, the connection goes on
                _skipBody = bodyLength;
                dropped?.Invoke(headerLength + bodyLength);
            }
            else
            {
                throw new MqttCommunicationException($"The broker sent a packet of {headerLength + bodyLength} bytes, more than the uplink's MaxPacketSize ({maxPacketSize})");
            }
        }
    }

    // The next body bytes of a dropped PUBLISH, about to be discarded: picks out the topic length
    // and the packet identifier after it, jumping over the topic.
    private void Watch(ReadOnlySpan<byte> body)
    {
        var i = 0;
        while (i < body.Length && _skipped < _watchUntil)
        {
            var topicEnd = 2 + _topicLength;
            if (_skipped >= 2 && _skipped < topicEnd)
            {
                var jump = (int)Math.Min(body.Length - i, topicEnd - _skipped);
                i += jump;
                _skipped += jump;
                continue;
            }

            var b = body[i];
            if (_skipped == 0)
            {
                _topicLength = b << 8;
            }
            else if (_skipped == 1)
            {
                _topicLength |= b;
                _watchUntil = _topicLength + 4L;
            }
            else if (_skipped == topicEnd)
            {
                _packetId = b << 8;
            }
            else
            {
                _packetId |= b;
                if (_packetId != 0)
                {
                    AddStub(_droppedQos, (ushort)_packetId);
                }
            }

            i++;
            _skipped++;
        }

        _skipped += body.Length - i;
    }

    /// <summary>Copies up to <see cref="Released"/> bytes into <paramref name="destination"/>.</summary>
    public int Take(Span<byte> destination)
    {
        var n = 0;
        while (n < destination.Length)
        {
            var next = _stubs.Count > 0 ? _stubs.Peek() : null;
            if (next is not null && next.At == _taken)
            {
                var m = Math.Min(destination.Length - n, next.Bytes.Length - next.Taken);
                next.Bytes.AsSpan(next.Taken, m).CopyTo(destination[n..]);
                next.Taken += m;
                _stubBytes -= m;
                n += m;
                if (next.Taken == next.Bytes.Length)
                {
                    _stubs.Dequeue();
                }

                continue;
            }

            var k = Math.Min(destination.Length - n, next is null ? _released : (int)(next.At - _taken));
            if (k == 0)
            {
                break;
            }

            _buffer.AsSpan(_offset, k).CopyTo(destination[n..]);
            _offset += k;
            _count -= k;
            _released -= k;
            _taken += k;
            n += k;
        }

        return n;
    }

    // The stub goes where the dropped PUBLISH was: after everything released so far, before
    // anything that came after it.
    private void AddStub(int qos, ushort packetId)
    {
        byte[] stub = mqtt5
            ? [(byte)(0x30 | (qos << 1)), 6, 0, 1, 0, (byte)(packetId >> 8), (byte)packetId, 0] // properties: none
            : [(byte)(0x30 | (qos << 1)), 5, 0, 1, 0, (byte)(packetId >> 8), (byte)packetId];
        _stubs.Enqueue(new Stub(_taken + _released, stub));
        _stubBytes += stub.Length;
    }

    private sealed class Stub(long at, byte[] bytes)
    {
        public long At { get; } = at; // how many bytes of the buffer are taken before it

        public byte[] Bytes { get; } = bytes;

        public int Taken { get; set; }
    }

    private void Cut(int at, int length, ref int end)
    {
        Buffer.BlockCopy(_buffer, at + length, _buffer, at, end - at - length);
        _count -= length;
        end -= length;
    }

    // An MQTT fixed header: the type byte and one to four bytes of remaining length.
    private static bool TryReadFixedHeader(ReadOnlySpan<byte> bytes, out int headerLength, out long bodyLength)
    {
        var status = MqttVarInt.TryReadFixedHeader(bytes, out var remaining, out headerLength);
        bodyLength = remaining;
        return status == VarIntStatus.Malformed
            ? throw new MqttProtocolViolationException("The broker sent a packet whose remaining length is longer than four bytes.")
            : status == VarIntStatus.Complete;
    }
}

/// <summary>
/// Builds the uplink's MQTTnet client adapters over <see cref="BatchingMqttChannel"/>. One per
/// uplink, which connects one client at a time: <see cref="Last"/> is its current connection's.
/// </summary>
internal sealed class BatchingClientAdapterFactory(int maxPacketSize, Action<long>? publishDropped) : IMqttClientAdapterFactory
{
    private UplinkChannelAdapter? _last;

    public UplinkChannelAdapter? Last => Volatile.Read(ref _last);

    public IMqttChannelAdapter CreateClientAdapter(MqttClientOptions options, MqttPacketInspector packetInspector, IMqttNetLogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        var formatter = new MqttPacketFormatterAdapter(options.ProtocolVersion, new MqttBufferWriter(options.WriterBufferSize, options.WriterBufferSizeMax));
        var adapter = new UplinkChannelAdapter(new MqttChannelAdapter(new BatchingMqttChannel(options, maxPacketSize, publishDropped), formatter, logger)
        {
            AllowPacketFragmentation = options.AllowPacketFragmentation,
            PacketInspector = packetInspector,
        });
        Volatile.Write(ref _last, adapter);
        return adapter;
    }
}
