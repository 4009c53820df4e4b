namespace Gateway.Routing;

/// <summary>
/// Message properties shared by every protocol; names follow AMQP 0-9-1 basic properties.
/// ARCHITECTURE.md lists how MQTT 5 and STOMP map onto them.
/// </summary>
public sealed record class MessageProperties
{
    /// <summary>No properties, not persistent. Shared so property-less messages allocate nothing.</summary>
    public static readonly MessageProperties Empty = new();

    /// <summary>No properties, persistent.</summary>
    public static readonly MessageProperties PersistentEmpty = new() { Persistent = true };

    public bool Persistent { get; init; }

    public string? ContentType { get; init; }

    public string? ContentEncoding { get; init; }

    /// <summary>Opaque bytes: MQTT 5 correlation data is binary, AMQP's correlation-id is a short string.</summary>
    public ReadOnlyMemory<byte> CorrelationId { get; init; }

    /// <summary>A routing key on <c>amq.topic</c> (MQTT response topic with '/' mapped to '.').</summary>
    public string? ReplyTo { get; init; }

    /// <summary>Per-message time to live (AMQP expiration, MQTT 5 message expiry interval).</summary>
    public TimeSpan? Expiration { get; init; }

    public string? MessageId { get; init; }

    public DateTimeOffset? Timestamp { get; init; }

    public string? UserId { get; init; }

    public string? Type { get; init; }

    public string? AppId { get; init; }

    /// <summary>Application headers (MQTT 5 user properties, STOMP custom headers). Case-sensitive.</summary>
    public IReadOnlyDictionary<string, object?>? Headers { get; init; }
}
