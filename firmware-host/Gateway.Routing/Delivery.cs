namespace Gateway.Routing;

/// <summary>A message handed to a consumer, identified by a per-consumer delivery tag.</summary>
public readonly struct Delivery
{
    internal Delivery(QueueEntry entry, ulong deliveryTag)
    {
        Entry = entry;
        DeliveryTag = deliveryTag;
    }

    public GatewayMessage Message => Entry.Message;

    public ulong DeliveryTag { get; }

    /// <summary>True when an earlier delivery of this message was not acknowledged.</summary>
    public bool Redelivered => Entry.Redelivered;

    internal QueueEntry Entry { get; }
}

/// <summary>
/// A message's place in a queue: its sequence number fixes its position for requeues (and is
/// its offset in a durable queue's log). Times are <see cref="TimeProvider"/> timestamps.
/// </summary>
internal readonly record struct QueueEntry(long Seq, GatewayMessage Message, long EnqueuedAt, long ExpiresAt, bool Redelivered)
{
    public const long Never = long.MaxValue;
}
