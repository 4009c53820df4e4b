using System.Threading.Channels;

namespace Gateway.Routing;

/// <summary>How a consumer takes messages from a queue.</summary>
public sealed record class ConsumerOptions
{
    /// <summary>Messages count as acknowledged once handed over.</summary>
    public bool AutoAck { get; init; }

    /// <summary>
    /// Most unacknowledged deliveries (0 = unlimited). With <see cref="AutoAck"/> it bounds the
    /// deliveries buffered for a slow reader instead (0 = <see cref="DefaultAutoAckBuffer"/>).
    /// </summary>
    public int Prefetch { get; init; }

    public string? Tag { get; init; }

    public const int DefaultAutoAckBuffer = 1024;
}

/// <summary>
/// One consumer of a queue. Deliveries arrive in queue order through <see cref="TryRead"/> /
/// <see cref="WaitToReadAsync"/>; the queue round-robins among consumers that have credit.
/// </summary>
public sealed class QueueConsumer : IDisposable
{
    // Not single-reader: cancelling reads back what is left while the owner may still be reading.
    private readonly Channel<Delivery> _channel = Channel.CreateUnbounded<Delivery>(
        new UnboundedChannelOptions { SingleReader = false, SingleWriter = true });

    // Guarded by the queue's lock.
    private readonly Dictionary<ulong, QueueEntry> _unacked = [];
    private ulong _lastTag;
    private int _limit;

    // Deliveries not yet acknowledged (manual ack) or not yet read (auto-ack). Written under
    // the queue's lock, decremented lock-free by an auto-ack reader.
    private int _outstanding;

    internal QueueConsumer(MessageQueue queue, ConsumerOptions options)
    {
        Queue = queue;
        AutoAck = options.AutoAck;
        Tag = options.Tag ?? string.Empty;
        _limit = LimitFor(options.AutoAck, options.Prefetch);
    }

    public MessageQueue Queue { get; }

    public string Tag { get; }

    public bool AutoAck { get; }

    /// <summary>Deliveries awaiting acknowledgement.</summary>
    public int UnackedCount => AutoAck ? 0 : Volatile.Read(ref _outstanding);

    /// <summary>Deliveries handed to this consumer and not yet read.</summary>
    public int Buffered => _channel.Reader.Count;

    /// <summary>Completes when the consumer is cancelled or its queue deleted.</summary>
    public Task Completion => _channel.Reader.Completion;

    internal bool HasCredit => Volatile.Read(ref _outstanding) < _limit;

    internal Dictionary<ulong, QueueEntry> Unacked => _unacked;

    // Under the queue's lock: the last tag issued, and the tag below which all are settled
    // (moved by multiple settlements, so theirs walk only the tags still possibly outstanding).
    internal ulong LastTagLocked => _lastTag;

    internal ulong SettledBelowLocked { get; set; } = 1;

    public bool TryRead(out Delivery delivery)
    {
        if (!_channel.Reader.TryRead(out delivery))
        {
            return false;
        }

        if (AutoAck && Interlocked.Decrement(ref _outstanding) == _limit / 2)
        {
            // Half the buffer has been read: let the queue refill it. Refilling at the half-way
            // mark rather than on every read keeps the queue's lock off the per-message path.
            Queue.Kick();
        }

        return true;
    }

    public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken) =>
        _channel.Reader.WaitToReadAsync(cancellationToken);

    public void Ack(ulong deliveryTag, bool multiple = false) => Queue.Settle(this, deliveryTag, multiple, Settlement.Ack);

    public void Nack(ulong deliveryTag, bool multiple, bool requeue) =>
        Queue.Settle(this, deliveryTag, multiple, requeue ? Settlement.Requeue : Settlement.DeadLetter);

    public void Reject(ulong deliveryTag, bool requeue) => Nack(deliveryTag, multiple: false, requeue);

    /// <summary>Changes the prefetch limit of a live consumer (AMQP basic.qos).</summary>
    public void SetPrefetch(int prefetch)
    {
        Volatile.Write(ref _limit, LimitFor(AutoAck, prefetch));
        Queue.Kick();
    }

    /// <summary>Stops consuming: unacknowledged and unread deliveries go back to the queue.</summary>
    public void Dispose() => Queue.RemoveConsumer(this);

    // Called under the queue's lock.
    internal void DeliverLocked(QueueEntry entry)
    {
        var tag = ++_lastTag;
        if (!AutoAck)
        {
            _unacked.Add(tag, entry);
        }

        Interlocked.Increment(ref _outstanding);
        _channel.Writer.TryWrite(new Delivery(entry, tag));
    }

    // Called under the queue's lock.
    internal void SettledLocked(int count) => Interlocked.Add(ref _outstanding, -count);

    // Called under the queue's lock: stop and hand back everything not yet settled; reading
    // what is left in the channel also completes Completion.
    internal void CompleteLocked(List<QueueEntry> returned)
    {
        _channel.Writer.TryComplete();
        while (_channel.Reader.TryRead(out var unread))
        {
            if (AutoAck)
            {
                returned.Add(unread.Entry);
            }
        }

        // Unacknowledged deliveries (read or not) go back flagged as redelivered.
        foreach (var entry in _unacked.Values)
        {
            returned.Add(entry with { Redelivered = true });
        }

        _unacked.Clear();
        _outstanding = 0;
    }

    private static int LimitFor(bool autoAck, int prefetch) =>
        prefetch > 0 ? prefetch : autoAck ? ConsumerOptions.DefaultAutoAckBuffer : int.MaxValue;
}

internal enum Settlement
{
    Ack,
    Requeue,
    DeadLetter,
}
