using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace Gateway.LoadTool;

/// <summary>
/// A minimal MQTT 3.1.1 client over a raw socket: just CONNECT, SUBSCRIBE, PUBLISH (QoS 0/1)
/// and PUBACK, with writes batched into one buffer, so the load tool costs little next to the
/// broker it measures.
/// </summary>
internal sealed class MqttConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _readBuffer = new byte[256 * 1024];
    private byte[] _writeBuffer = new byte[256 * 1024];
    private int _writeLength;
    private int _readStart;
    private int _readEnd;

    private MqttConnection(Socket socket) => _socket = socket;

    public static async Task<MqttConnection> ConnectAsync(string host, int port, string clientId, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(host, port, cancellationToken);
        var connection = new MqttConnection(socket);
        var id = Encoding.UTF8.GetBytes(clientId);
        var body = new List<byte> { 0, 4, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 4, 0x02, 0, 60, (byte)(id.Length >> 8), (byte)id.Length };
        body.AddRange(id);
        connection.WritePacket(0x10, [.. body]);
        await connection.FlushAsync(cancellationToken);
        var (type, payload) = await connection.ReadPacketAsync(cancellationToken);
        if (type != 0x20 || payload.Span[1] != 0)
        {
            throw new InvalidOperationException($"CONNECT refused ({type:X2})");
        }

        return connection;
    }

    public async Task SubscribeAsync(string filter, int qos, CancellationToken cancellationToken)
    {
        var topic = Encoding.UTF8.GetBytes(filter);
        var body = new List<byte> { 0, 1, (byte)(topic.Length >> 8), (byte)topic.Length };
        body.AddRange(topic);
        body.Add((byte)qos);
        WritePacket(0x82, [.. body]);
        await FlushAsync(cancellationToken);
        var (type, _) = await ReadPacketAsync(cancellationToken);
        if (type != 0x90)
        {
            throw new InvalidOperationException("no SUBACK");
        }
    }

    public int Buffered => _writeLength;

    /// <summary>Flush pending writes (PUBACKs) whenever a read would wait: for connections with one task only.</summary>
    public bool FlushBeforeWaiting { get; set; }

    public void WritePublish(ReadOnlySpan<byte> topic, ReadOnlySpan<byte> payload, int qos, ushort packetId)
    {
        var remaining = 2 + topic.Length + (qos > 0 ? 2 : 0) + payload.Length;
        var span = Reserve(5 + remaining);
        var n = 0;
        span[n++] = (byte)(0x30 | (qos << 1));
        n += WriteVarInt(span[n..], remaining);
        BinaryPrimitives.WriteUInt16BigEndian(span[n..], (ushort)topic.Length);
        n += 2;
        topic.CopyTo(span[n..]);
        n += topic.Length;
        if (qos > 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(span[n..], packetId);
            n += 2;
        }

        payload.CopyTo(span[n..]);
        _writeLength += n + payload.Length;
    }

    public void WritePubAck(ushort packetId)
    {
        var span = Reserve(4);
        span[0] = 0x40;
        span[1] = 2;
        BinaryPrimitives.WriteUInt16BigEndian(span[2..], packetId);
        _writeLength += 4;
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var offset = 0;
        while (offset < _writeLength)
        {
            offset += await _socket.SendAsync(_writeBuffer.AsMemory(offset, _writeLength - offset), SocketFlags.None, cancellationToken);
        }

        _writeLength = 0;
    }

    /// <summary>Reads one packet; the payload is valid until the next read.</summary>
    public async ValueTask<(byte Type, ReadOnlyMemory<byte> Body)> ReadPacketAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryParse(out var type, out var body))
            {
                return (type, body);
            }

            if (_readStart > 0)
            {
                Buffer.BlockCopy(_readBuffer, _readStart, _readBuffer, 0, _readEnd - _readStart);
                _readEnd -= _readStart;
                _readStart = 0;
            }

            if (FlushBeforeWaiting && _writeLength > 0 && _socket.Available == 0)
            {
                await FlushAsync(cancellationToken);
            }

            var read = await _socket.ReceiveAsync(_readBuffer.AsMemory(_readEnd), SocketFlags.None, cancellationToken);
            if (read == 0)
            {
                throw new EndOfStreamException("broker closed the connection");
            }

            _readEnd += read;
        }
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    private bool TryParse(out byte type, out ReadOnlyMemory<byte> body)
    {
        type = 0;
        body = default;
        var available = _readEnd - _readStart;
        if (available < 2)
        {
            return false;
        }

        var remaining = 0;
        var multiplier = 1;
        var index = _readStart + 1;
        byte next;
        do
        {
            if (index >= _readEnd)
            {
                return false;
            }

            next = _readBuffer[index++];
            remaining += (next & 0x7F) * multiplier;
            multiplier *= 128;
        }
        while ((next & 0x80) != 0);

        if (index + remaining > _readEnd)
        {
            if (index + remaining - _readStart > _readBuffer.Length)
            {
                throw new InvalidOperationException("packet larger than the read buffer");
            }

            return false;
        }

        type = _readBuffer[_readStart];
        body = _readBuffer.AsMemory(index, remaining);
        _readStart = index + remaining;
        return true;
    }

    private Span<byte> Reserve(int size)
    {
        if (_writeLength + size > _writeBuffer.Length)
        {
            Array.Resize(ref _writeBuffer, Math.Max(_writeBuffer.Length * 2, _writeLength + size));
        }

        return _writeBuffer.AsSpan(_writeLength, size);
    }

    private void WritePacket(byte header, byte[] body)
    {
        var span = Reserve(5 + body.Length);
        span[0] = header;
        var n = 1 + WriteVarInt(span[1..], body.Length);
        body.CopyTo(span[n..]);
        _writeLength += n + body.Length;
    }

    private static int WriteVarInt(Span<byte> span, int value)
    {
        var n = 0;
        do
        {
            var digit = (byte)(value % 128);
            value /= 128;
            if (value > 0)
            {
                digit |= 0x80;
            }

            span[n++] = digit;
        }
        while (value > 0);
        return n;
    }
}
