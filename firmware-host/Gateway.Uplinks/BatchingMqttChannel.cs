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
/// both ways. This one queues writes and sends everything queued in one write from a flush loop
/// (the packets of a whole in-flight window usually leave together), and reads through a
/// 64 KiB buffer. A write error is reported by the next write; the read side sees the dead
/// socket anyway, so MQTTnet notices a lost connection as before.
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
    private Task _flushing = Task.CompletedTask;
    private Exception? _writeError;
    private int _readOffset;
    private int _readCount;

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
            flushing = _flushing;
        }

        await flushing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // a DISCONNECT queued last goes out
        await _inner.DisconnectAsync(cancellationToken);
    }

    public async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        if (_readCount == 0)
        {
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

            if (_flushing.IsCompleted)
            {
                _flushing = FlushLoopAsync();
            }

            return _queued.WrittenCount > MaxQueuedBytes ? _flushing.WaitAsync(cancellationToken) : Task.CompletedTask;
        }
    }

    public void Dispose() => _inner.Dispose();

    private async Task FlushLoopAsync()
    {
        await Task.Yield(); // let the writer queue the rest of its burst first
        while (true)
        {
            lock (_sync)
            {
                if (_queued.WrittenCount == 0)
                {
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

/// <summary>Builds MQTTnet client adapters over <see cref="BatchingMqttChannel"/>.</summary>
internal sealed class BatchingClientAdapterFactory : IMqttClientAdapterFactory
{
    public IMqttChannelAdapter CreateClientAdapter(MqttClientOptions options, MqttPacketInspector packetInspector, IMqttNetLogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        var formatter = new MqttPacketFormatterAdapter(options.ProtocolVersion, new MqttBufferWriter(options.WriterBufferSize, options.WriterBufferSizeMax));
        return new MqttChannelAdapter(new BatchingMqttChannel(options), formatter, logger)
        {
            AllowPacketFragmentation = options.AllowPacketFragmentation,
            PacketInspector = packetInspector,
        };
    }
}
