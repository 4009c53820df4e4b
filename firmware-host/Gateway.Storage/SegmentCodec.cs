using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Gateway.Routing;
using LiteDB;

namespace Gateway.Storage;

/// <summary>
/// The records of a segment: consecutive messages of one queue packed into one binary field, so
/// the store writes, reads and deletes a document per segment rather than per message. A record
/// is its length (varint), the store-clock time it was stored (varint ms), a field mask, and the
/// fields present: exchange, routing key, body, then the optional properties and origin.
/// </summary>
internal static class SegmentCodec
{
    [Flags]
    private enum Fields : ushort
    {
        None = 0,
        Persistent = 1 << 0,
        ContentType = 1 << 1,
        ContentEncoding = 1 << 2,
        CorrelationId = 1 << 3,
        ReplyTo = 1 << 4,
        Expiration = 1 << 5,
        MessageId = 1 << 6,
        Timestamp = 1 << 7,
        UserId = 1 << 8,
        Type = 1 << 9,
        AppId = 1 << 10,
        Headers = 1 << 11,
        OriginProtocol = 1 << 12,
        OriginConnection = 1 << 13,
        OriginUser = 1 << 14,
    }

    private const Fields PropertyFields = (Fields)((1 << 12) - 1);

    private const int MaxVarint = 10;

    /// <summary>Appends one record to <paramref name="buffer"/>; returns its length.</summary>
    public static int Write(PooledBuffer buffer, GatewayMessage message, TimeSpan enqueuedAt)
    {
        var p = message.Properties;
        var origin = message.Origin;
        byte[]? headers = p.Headers is { Count: > 0 } ? HeadersToBson(p.Headers) : null;
        var fields = Fields.None;
        var size = MaxVarint + sizeof(ushort) + Str(message.Exchange) + Str(message.RoutingKey) + MaxVarint + message.Body.Length;
        size += Opt(p.Persistent, Fields.Persistent, 0, ref fields)
            + Opt(p.ContentType, Fields.ContentType, ref fields)
            + Opt(p.ContentEncoding, Fields.ContentEncoding, ref fields)
            + Opt(!p.CorrelationId.IsEmpty, Fields.CorrelationId, MaxVarint + p.CorrelationId.Length, ref fields)
            + Opt(p.ReplyTo, Fields.ReplyTo, ref fields)
            + Opt(p.Expiration is not null, Fields.Expiration, MaxVarint, ref fields)
            + Opt(p.MessageId, Fields.MessageId, ref fields)
            + Opt(p.Timestamp is not null, Fields.Timestamp, sizeof(long), ref fields)
            + Opt(p.UserId, Fields.UserId, ref fields)
            + Opt(p.Type, Fields.Type, ref fields)
            + Opt(p.AppId, Fields.AppId, ref fields)
            + Opt(headers is not null, Fields.Headers, MaxVarint + (headers?.Length ?? 0), ref fields)
            + Opt(origin.Protocol, Fields.OriginProtocol, ref fields)
            + Opt(origin.ConnectionId, Fields.OriginConnection, ref fields)
            + Opt(origin.User, Fields.OriginUser, ref fields);

        // Length prefix first with room for its largest form; the body is written after it and
        // moved down if the prefix turned out shorter.
        var span = buffer.GetSpan(MaxVarint + size);
        var at = MaxVarint;
        at += WriteVarint(span[at..], (ulong)Math.Max(0, (long)enqueuedAt.TotalMilliseconds));
        BinaryPrimitives.WriteUInt16LittleEndian(span[at..], (ushort)fields);
        at += sizeof(ushort);
        at += WriteString(span[at..], message.Exchange);
        at += WriteString(span[at..], message.RoutingKey);
        at += WriteBytes(span[at..], message.Body.Span);
        if (fields != Fields.None)
        {
            at = WriteOptional(span, at, fields, p, origin, headers);
        }

        var length = at - MaxVarint;
        Span<byte> prefix = stackalloc byte[MaxVarint];
        var prefixLength = WriteVarint(prefix, (ulong)length);
        span.Slice(MaxVarint, length).CopyTo(span[prefixLength..]);
        prefix[..prefixLength].CopyTo(span);
        buffer.Advance(prefixLength + length);
        return prefixLength + length;
    }

    private static int WriteOptional(Span<byte> span, int at, Fields fields, MessageProperties p, MessageOrigin origin, byte[]? headers)
    {
        at += Put(span[at..], fields, Fields.ContentType, p.ContentType);
        at += Put(span[at..], fields, Fields.ContentEncoding, p.ContentEncoding);
        if ((fields & Fields.CorrelationId) != 0)
        {
            at += WriteBytes(span[at..], p.CorrelationId.Span);
        }

        at += Put(span[at..], fields, Fields.ReplyTo, p.ReplyTo);
        if ((fields & Fields.Expiration) != 0)
        {
            at += WriteVarint(span[at..], (ulong)Math.Max(0, (long)p.Expiration!.Value.TotalMilliseconds));
        }

        at += Put(span[at..], fields, Fields.MessageId, p.MessageId);
        if ((fields & Fields.Timestamp) != 0)
        {
            BinaryPrimitives.WriteInt64LittleEndian(span[at..], p.Timestamp!.Value.ToUnixTimeMilliseconds());
            at += sizeof(long);
        }

        at += Put(span[at..], fields, Fields.UserId, p.UserId);
        at += Put(span[at..], fields, Fields.Type, p.Type);
        at += Put(span[at..], fields, Fields.AppId, p.AppId);
        if (headers is not null)
        {
            at += WriteBytes(span[at..], headers);
        }

        at += Put(span[at..], fields, Fields.OriginProtocol, origin.Protocol);
        at += Put(span[at..], fields, Fields.OriginConnection, origin.ConnectionId);
        at += Put(span[at..], fields, Fields.OriginUser, origin.User);
        return at;
    }

    /// <summary>Reads the record at <paramref name="at"/>; returns the position after it.</summary>
    public static int Read(ReadOnlySpan<byte> blob, int at, out GatewayMessage message, out TimeSpan enqueuedAt)
    {
        var length = (int)ReadVarint(blob, ref at);
        var end = at + length;
        var record = blob[..end];
        enqueuedAt = TimeSpan.FromMilliseconds(ReadVarint(record, ref at));
        var fields = (Fields)BinaryPrimitives.ReadUInt16LittleEndian(record[at..]);
        at += sizeof(ushort);
        var exchange = ReadString(record, ref at)!;
        var routingKey = ReadString(record, ref at)!;
        var body = ReadBytes(record, ref at);
        var properties = MessageProperties.Empty;
        MessageOrigin origin = default;
        if ((fields & PropertyFields) == Fields.Persistent)
        {
            properties = MessageProperties.PersistentEmpty; // the common case: shared, not allocated per message
        }
        else if ((fields & PropertyFields) != 0)
        {
            properties = new MessageProperties
            {
                Persistent = (fields & Fields.Persistent) != 0,
                ContentType = Get(record, ref at, fields, Fields.ContentType),
                ContentEncoding = Get(record, ref at, fields, Fields.ContentEncoding),
                CorrelationId = (fields & Fields.CorrelationId) != 0 ? ReadBytes(record, ref at) : ReadOnlyMemory<byte>.Empty,
                ReplyTo = Get(record, ref at, fields, Fields.ReplyTo),
                Expiration = (fields & Fields.Expiration) != 0 ? TimeSpan.FromMilliseconds(ReadVarint(record, ref at)) : null,
                MessageId = Get(record, ref at, fields, Fields.MessageId),
                Timestamp = (fields & Fields.Timestamp) != 0 ? ReadTimestamp(record, ref at) : null,
                UserId = Get(record, ref at, fields, Fields.UserId),
                Type = Get(record, ref at, fields, Fields.Type),
                AppId = Get(record, ref at, fields, Fields.AppId),
                Headers = (fields & Fields.Headers) != 0 ? HeadersFromBson(ReadBytes(record, ref at)) : null,
            };
        }

        if (fields != Fields.None)
        {
            origin = new MessageOrigin(
                Get(record, ref at, fields, Fields.OriginProtocol),
                Get(record, ref at, fields, Fields.OriginConnection),
                Get(record, ref at, fields, Fields.OriginUser));
        }

        message = new GatewayMessage(exchange, routingKey, body, properties, origin);
        return end;
    }

    /// <summary>Steps over the record at <paramref name="at"/> and says how many body bytes it holds.</summary>
    public static int Skip(ReadOnlySpan<byte> blob, int at, out int bodyLength)
    {
        var length = (int)ReadVarint(blob, ref at);
        var end = at + length;
        var record = blob[..end];
        _ = ReadVarint(record, ref at);
        at += sizeof(ushort);
        SkipField(record, ref at); // exchange
        SkipField(record, ref at); // routing key
        bodyLength = (int)ReadVarint(record, ref at);
        return end;
    }

    private static void SkipField(ReadOnlySpan<byte> record, ref int at)
    {
        var length = (int)ReadVarint(record, ref at);
        at += length;
    }

    private static int Str(string value) => MaxVarint + Encoding.UTF8.GetMaxByteCount(value.Length);

    private static int Opt(string? value, Fields field, ref Fields fields) =>
        Opt(value is not null, field, value is null ? 0 : Str(value), ref fields);

    private static int Opt(bool present, Fields field, int size, ref Fields fields)
    {
        if (!present)
        {
            return 0;
        }

        fields |= field;
        return size;
    }

    private static int Put(Span<byte> span, Fields fields, Fields field, string? value) =>
        (fields & field) != 0 ? WriteString(span, value!) : 0;

    private static string? Get(ReadOnlySpan<byte> record, ref int at, Fields fields, Fields field) =>
        (fields & field) != 0 ? ReadString(record, ref at) : null;

    private static int WriteVarint(Span<byte> span, ulong value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        return i;
    }

    private static long ReadVarint(ReadOnlySpan<byte> span, ref int at)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = span[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return checked((long)value);
            }
        }

        throw new FormatException("Segment record has a malformed length.");
    }

    private static int WriteString(Span<byte> span, string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        var at = WriteVarint(span, (ulong)length);
        return at + Encoding.UTF8.GetBytes(value, span[at..]);
    }

    private static string ReadString(ReadOnlySpan<byte> record, ref int at)
    {
        var length = (int)ReadVarint(record, ref at);
        var value = Encoding.UTF8.GetString(record.Slice(at, length));
        at += length;
        return value;
    }

    private static int WriteBytes(Span<byte> span, ReadOnlySpan<byte> value)
    {
        var at = WriteVarint(span, (ulong)value.Length);
        value.CopyTo(span[at..]);
        return at + value.Length;
    }

    // Copied out, so a message read back does not keep its whole segment alive.
    private static byte[] ReadBytes(ReadOnlySpan<byte> record, ref int at)
    {
        var length = (int)ReadVarint(record, ref at);
        var value = record.Slice(at, length).ToArray();
        at += length;
        return value;
    }

    private static DateTimeOffset ReadTimestamp(ReadOnlySpan<byte> record, ref int at)
    {
        var ms = BinaryPrimitives.ReadInt64LittleEndian(record[at..]);
        at += sizeof(long);
        return DateTimeOffset.FromUnixTimeMilliseconds(ms);
    }

    // Headers are rare on this path and typed: BSON keeps their types as the old format did.
    private static byte[] HeadersToBson(IReadOnlyDictionary<string, object?> headers) =>
        BsonSerializer.Serialize(MessageDocument.HeadersToBson(headers));

    private static Dictionary<string, object?> HeadersFromBson(byte[] bson) =>
        MessageDocument.HeadersFromBson(BsonSerializer.Deserialize(bson));
}

/// <summary>A growable byte buffer rented from the shared pool.</summary>
internal sealed class PooledBuffer : IDisposable
{
    private byte[] _array;

    public PooledBuffer(int capacity) => _array = ArrayPool<byte>.Shared.Rent(capacity);

    public int Length { get; private set; }

    public ReadOnlySpan<byte> WrittenSpan => _array.AsSpan(0, Length);

    public Span<byte> GetSpan(int size)
    {
        if (_array.Length - Length < size)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(_array.Length * 2, Length + size));
            _array.AsSpan(0, Length).CopyTo(larger);
            if (_array.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_array);
            }

            _array = larger;
        }

        return _array.AsSpan(Length);
    }

    public void Advance(int count) => Length += count;

    public void Clear() => Length = 0;

    public void Dispose()
    {
        var array = _array;
        _array = [];
        Length = 0;
        if (array.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }
}
