using System.Buffers;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Channel;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Implementations;

namespace Gateway.Uplinks;

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
/// </summary>
internal sealed class BatchingMqttChannel : IMqttChannel, IDisposable
{
    private const int ReadBufferSize = 64 * 1024;
    private const int MaxQueuedBytes = 1024 * 1024; // a writer waits for the flush beyond this

    private readonly MqttTcpChannel _inner;
    private readonly Lock _sync = new();
    private readonly byte[] _readBuffer = new byte[ReadBufferSize];
    private ArrayBufferWriter<byte> _queued = new(16 * 1024);
    private ArrayBufferWriter<byte> _sending = new(16 * 1024);
    private TaskCompletionSource? _flushing; // under _sync: set while a flush runs
    private Exception? _writeError;
    private int _readOffset;
    private int _readCount;
    private int _readerThread; // the thread handling input just read; 0 while the read loop waits

    public BatchingMqttChannel(MqttClientOptions options) => _inner = new MqttTcpChannel(options);

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
        if (_readCount == 0)
        {
            Volatile.Write(ref _readerThread, 0);
            _ = FlushAsync(yieldFirst: false); // what handling the last input queued leaves now, from here, without waiting for the peer
            if (count >= ReadBufferSize)
            {
                return await _inner.ReadAsync(buffer, offset, count, cancellationToken);
            }

            _readOffset = 0;
            _readCount = await _inner.ReadAsync(_readBuffer, 0, ReadBufferSize, cancellationToken);
            if (_readCount == 0)
            {
                return 0; // closed
            }
        }

        var n = Math.Min(count, _readCount);
        Buffer.BlockCopy(_readBuffer, _readOffset, buffer, offset, n);
        _readOffset += n;
        _readCount -= n;
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
/// Builds the uplink's MQTTnet client adapters over <see cref="BatchingMqttChannel"/>. One per
/// uplink, which connects one client at a time: <see cref="Last"/> is its current connection's.
/// </summary>
internal sealed class BatchingClientAdapterFactory : IMqttClientAdapterFactory
{
    private UplinkChannelAdapter? _last;

    public UplinkChannelAdapter? Last => Volatile.Read(ref _last);

    public IMqttChannelAdapter CreateClientAdapter(MqttClientOptions options, MqttPacketInspector packetInspector, IMqttNetLogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        var formatter = new MqttPacketFormatterAdapter(options.ProtocolVersion, new MqttBufferWriter(options.WriterBufferSize, options.WriterBufferSizeMax));
        var adapter = new UplinkChannelAdapter(new MqttChannelAdapter(new BatchingMqttChannel(options), formatter, logger)
        {
            AllowPacketFragmentation = options.AllowPacketFragmentation,
            PacketInspector = packetInspector,
        });
        Volatile.Write(ref _last, adapter);
        return adapter;
    }
}
