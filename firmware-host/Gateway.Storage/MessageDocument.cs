using System.Globalization;
using Gateway.Routing;
using LiteDB;

namespace Gateway.Storage;

/// <summary>
/// A message as one BSON document: how retained messages are stored, and how queue messages
/// were stored before segments (<see cref="SegmentLog"/>): one document each in the "log"
/// collection under the key "queue NUL offset" (offset zero-padded). Such a file is converted at
/// open (<see cref="SegmentLog.ImportLegacy"/>).
/// </summary>
internal static class MessageDocument
{
    public const string Collection = "log";
    public const string RetainedCollection = "retained";
    public const string MetaCollection = "meta";
    public const string ClockId = "clock";
    private const char Separator = '\0';

    public static string Key(string queue, long offset) =>
        string.Create(CultureInfo.InvariantCulture, $"{queue}{Separator}{offset:D19}");

    public static string QueueOf(string key) => key[..key.IndexOf(Separator, StringComparison.Ordinal)];

    public static long OffsetOf(string key) => long.Parse(key.AsSpan(key.IndexOf(Separator, StringComparison.Ordinal) + 1), CultureInfo.InvariantCulture);

    /// <summary>When the message was stored, on the store's clock.</summary>
    public static TimeSpan EnqueuedAt(BsonDocument document) =>
        document.TryGetValue("t", out var t) && t.IsNumber ? TimeSpan.FromMilliseconds(t.AsInt64) : TimeSpan.Zero;

    public static BsonDocument ToDocument(string queue, long offset, GatewayMessage message, TimeSpan enqueuedAt)
    {
        var p = message.Properties;
        var document = new BsonDocument
        {
            ["_id"] = Key(queue, offset),
            ["e"] = message.Exchange,
            ["k"] = message.RoutingKey,
            ["b"] = message.Body.ToArray(),
            ["n"] = message.Body.Length,
            ["t"] = (long)enqueuedAt.TotalMilliseconds,
        };
        if (p.Persistent)
        {
            document["p"] = true;
        }

        Set(document, "ct", p.ContentType);
        Set(document, "ce", p.ContentEncoding);
        if (!p.CorrelationId.IsEmpty)
        {
            document["ci"] = p.CorrelationId.ToArray();
        }

        Set(document, "rt", p.ReplyTo);
        if (p.Expiration is { } expiration)
        {
            document["x"] = (long)expiration.TotalMilliseconds;
        }

        Set(document, "mi", p.MessageId);
        if (p.Timestamp is { } timestamp)
        {
            document["ts"] = timestamp.ToUnixTimeMilliseconds();
        }

        Set(document, "ui", p.UserId);
        Set(document, "ty", p.Type);
        Set(document, "ai", p.AppId);
        if (p.Headers is { Count: > 0 } headers)
        {
            document["h"] = HeadersToBson(headers);
        }

        Set(document, "op", message.Origin.Protocol);
        Set(document, "oc", message.Origin.ConnectionId);
        Set(document, "ou", message.Origin.User);
        return document;
    }

    public static GatewayMessage ToMessage(BsonDocument d)
    {
        var headers = d.TryGetValue("h", out var h) && h.IsDocument ? HeadersFromBson(h.AsDocument) : null;

        var properties = new MessageProperties
        {
            Persistent = d.TryGetValue("p", out var persistent) && persistent.AsBoolean,
            ContentType = Get(d, "ct"),
            ContentEncoding = Get(d, "ce"),
            CorrelationId = d.TryGetValue("ci", out var ci) ? ci.AsBinary : ReadOnlyMemory<byte>.Empty,
            ReplyTo = Get(d, "rt"),
            Expiration = d.TryGetValue("x", out var x) ? TimeSpan.FromMilliseconds(x.AsInt64) : null,
            MessageId = Get(d, "mi"),
            Timestamp = d.TryGetValue("ts", out var ts) ? DateTimeOffset.FromUnixTimeMilliseconds(ts.AsInt64) : null,
            UserId = Get(d, "ui"),
            Type = Get(d, "ty"),
            AppId = Get(d, "ai"),
            Headers = headers,
        };
        return new GatewayMessage(
            d["e"].AsString,
            d["k"].AsString,
            d["b"].AsBinary,
            properties,
            new MessageOrigin(Get(d, "op"), Get(d, "oc"), Get(d, "ou")));
    }

    public static BsonDocument HeadersToBson(IReadOnlyDictionary<string, object?> headers)
    {
        var document = new BsonDocument();
        foreach (var (name, value) in headers)
        {
            document[name] = ToBson(value);
        }

        return document;
    }

    public static Dictionary<string, object?> HeadersFromBson(BsonDocument document)
    {
        var headers = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in document)
        {
            headers[name] = FromBson(value);
        }

        return headers;
    }

    private static void Set(BsonDocument document, string name, string? value)
    {
        if (value is not null)
        {
            document[name] = value;
        }
    }

    private static string? Get(BsonDocument document, string name) =>
        document.TryGetValue(name, out var value) && value.IsString ? value.AsString : null;

    private static BsonValue ToBson(object? value) => value switch
    {
        null => BsonValue.Null,
        string s => s,
        bool b => b,
        byte b => (int)b,
        sbyte b => (int)b,
        short n => (int)n,
        ushort n => (int)n,
        int n => n,
        uint n => (long)n,
        long n => n,
        float f => (double)f,
        double f => f,
        decimal m => m,
        byte[] bytes => bytes,
        DateTimeOffset t => t.UtcDateTime,
        DateTime t => t,
        _ => Convert.ToString(value, CultureInfo.InvariantCulture),
    };

    private static object? FromBson(BsonValue value) => value.Type switch
    {
        BsonType.Null => null,
        BsonType.String => value.AsString,
        BsonType.Boolean => value.AsBoolean,
        BsonType.Int32 => value.AsInt32,
        BsonType.Int64 => value.AsInt64,
        BsonType.Double => value.AsDouble,
        BsonType.Decimal => value.AsDecimal,
        BsonType.Binary => value.AsBinary,
        BsonType.DateTime => new DateTimeOffset(value.AsDateTime.ToUniversalTime()),
        _ => value.ToString(),
    };
}
