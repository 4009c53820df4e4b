namespace Gateway.Routing;

/// <summary>
/// A queue: ready messages in order, deliveries round-robin to consumers with credit,
/// acknowledgements, requeues back to the original position, TTL, length limits and
/// dead-lettering, as a RabbitMQ classic queue behaves. One lock per queue; messages that must
/// be dead-lettered are routed after it is released, so queues never hold two locks. A durable
/// queue also writes every message to the store's log and keeps only a window in memory
/// (MessageQueue.Durable.cs).
/// </summary>
public sealed partial class MessageQueue
{
    private readonly Lock _sync = new();
    private readonly MessageRouter _router;
    private readonly TimeProvider _time;

    // Ready messages. Requeued ones keep their sequence number and come out first, in order:
    // every requeued message was delivered before anything still in _ready, so the head of the
    // queue is always the requeued minimum, if any, then _ready's head.
    private readonly RingBuffer<QueueEntry> _ready = new();
    private readonly PriorityQueue<QueueEntry, long> _requeued = new();
    private readonly List<QueueConsumer> _consumers = [];
    private int _nextConsumer;
    private long _nextSeq;
    private long _readyBytes;
    private bool _expiring;
    private bool _hadConsumer;
    private bool _deleted;
    private TaskCompletionSource? _flowWaiter;

    private long _published;
    private long _delivered;
    private long _acknowledged;
    private long _droppedMaxLength;
    private long _rejected;
    private long _expired;
    private long _deadLettered;

    internal MessageQueue(string name, QueueOptions options, MessageRouter router, TimeProvider time, IMessageStore? log = null)
    {
        Name = name;
        Options = options;
        Arguments = QueueArguments.Parse(options.Arguments);
        _router = router;
        _time = time;
        if (log is not null)
        {
            OpenLog(log);
        }
    }

    public string Name { get; }

    public QueueOptions Options { get; }

    public QueueArguments Arguments { get; }

    public bool IsDeleted => Volatile.Read(ref _deleted);

    public int ReadyCount
    {
        get
        {
            lock (_sync)
            {
                return ReadyCountLocked;
            }
        }
    }

    public int ConsumerCount
    {
        get
        {
            lock (_sync)
            {
                return _consumers.Count;
            }
        }
    }

    /// <summary>A consistent snapshot of the queue's gauges and counters.</summary>
    public QueueStatistics GetStatistics()
    {
        lock (_sync)
        {
            var unacked = 0;
            foreach (var consumer in _consumers)
            {
                unacked += consumer.UnackedCount;
            }

            var oldest = WindowCountLocked > 0 ? _time.GetElapsedTime(PeekHeadLocked().EnqueuedAt) : TimeSpan.Zero;
            return new QueueStatistics(
                ReadyCountLocked, ReadyBytesLocked, unacked, _consumers.Count, _published, _delivered, _acknowledged,
                _droppedMaxLength, _rejected, _expired, _deadLettered, oldest);
        }
    }

    internal List<Binding> BindingsLocked { get; } = [];

    // Ready messages: in memory plus, for a durable queue, those only on disk so far.
    private int ReadyCountLocked => WindowCountLocked + (int)Math.Min(_diskOnlyCount, int.MaxValue - WindowCountLocked);

    private long ReadyBytesLocked => _readyBytes + _diskOnlyBytes;

    private int WindowCountLocked => _ready.Count + _requeued.Count;

    public QueueConsumer AddConsumer(ConsumerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var consumer = new QueueConsumer(this, options);
        List<GatewayMessage>? dead = null;
        lock (_sync)
        {
            if (_deleted)
            {
                RoutingException.Throw(RoutingException.NotFound, $"no queue '{Name}'");
            }

            _consumers.Add(consumer);
            _hadConsumer = true;
            DispatchLocked(_time.GetTimestamp(), ref dead);
        }

        PublishDeadLetters(dead);
        return consumer;
    }

    /// <summary>Removes every ready message; returns how many there were.</summary>
    public int Purge()
    {
        lock (_sync)
        {
            return ClearReadyLocked();
        }
    }

    internal EnqueueOutcome Enqueue(GatewayMessage message, out Task? committed)
    {
        List<GatewayMessage>? dead = null;
        EnqueueOutcome outcome;
        committed = null;
        lock (_sync)
        {
            if (_deleted || (Options.IgnoreOrigin is { } ignored && ignored.Protocol == message.Origin.Protocol && ignored.ConnectionId == message.Origin.ConnectionId))
            {
                return EnqueueOutcome.Gone;
            }

            var now = _time.GetTimestamp();
            _published++;
            ExpireHeadLocked(now, ref dead);
            if (Arguments.Overflow != OverflowPolicy.DropHead && WouldOverflowLocked(message.Body.Length))
            {
                _rejected++;
                if (Arguments.Overflow == OverflowPolicy.RejectPublishDeadLetter)
                {
                    AddDeadLetterLocked(message, "maxlen", ref dead);
                }

                outcome = EnqueueOutcome.RejectedFull;
            }
            else if (_log is not null && !_log.TryAppend(Name, _nextSeq, message, _log.Clock, out committed))
            {
                _rejected++; // low on disk, or the store's writer is saturated: refuse rather than hold it unsaved
                committed = null;
                outcome = _log.LowOnDisk ? EnqueueOutcome.RejectedLowDisk : EnqueueOutcome.RejectedStoreBusy;
            }
            else
            {
                var entry = new QueueEntry(_nextSeq++, message, now, ExpiryFor(message, now), Redelivered: false);
                _expiring |= entry.ExpiresAt != QueueEntry.Never;
                if (committed is not null)
                {
                    TrackCommitLocked(entry.Seq, committed, message.Body.Length);
                }

                if (KeepInWindowLocked(entry))
                {
                    _ready.Push(entry);
                    _readyBytes += message.Body.Length;
                    DispatchLocked(now, ref dead);
                }

                DropHeadOverLimitLocked(ref dead);
                outcome = Options.FlowLimit > 0 && ReadyCountLocked >= Options.FlowLimit && _consumers.Count > 0
                    ? EnqueueOutcome.AcceptedFlowBlocked
                    : EnqueueOutcome.Accepted;
            }
        }

        PublishDeadLetters(dead);
        return outcome;
    }

    /// <summary>Waits until a flow-blocked queue has drained to half its flow limit.</summary>
    public Task WaitForFlowAsync(CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            if (_deleted || _consumers.Count == 0 || ReadyCountLocked <= Options.FlowLimit / 2)
            {
                return Task.CompletedTask;
            }

            _flowWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _flowWaiter.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Expires messages at the head whose time is up (called by the router's sweeper).</summary>
    internal void ExpireNow()
    {
        List<GatewayMessage>? dead = null;
        lock (_sync)
        {
            if (!_expiring)
            {
                return;
            }

            ExpireHeadLocked(_time.GetTimestamp(), ref dead);
        }

        PublishDeadLetters(dead);
    }

    /// <summary>A consumer has room again: deliver what is ready.</summary>
    internal void Kick()
    {
        List<GatewayMessage>? dead = null;
        lock (_sync)
        {
            if (ReadyCountLocked > 0)
            {
                DispatchLocked(_time.GetTimestamp(), ref dead);
            }
        }

        PublishDeadLetters(dead);
    }

    internal void Settle(QueueConsumer consumer, ulong deliveryTag, bool multiple, Settlement settlement)
    {
        List<GatewayMessage>? dead = null;
        lock (_sync)
        {
            var unacked = consumer.Unacked;
            var settled = 0;
            if (multiple)
            {
                settled = SettleUpToLocked(consumer, deliveryTag, settlement, ref dead);
            }
            else if (unacked.Remove(deliveryTag, out var entry))
            {
                var trims = new TrimRun(this);
                SettleOneLocked(entry, settlement, ref trims, ref dead);
                trims.Flush();
                settled = 1;
            }

            if (settled == 0 && (!multiple || deliveryTag != 0))
            {
                RoutingException.Throw(RoutingException.PreconditionFailed, $"unknown delivery tag {deliveryTag}");
            }

            consumer.SettledLocked(settled);
            DispatchLocked(_time.GetTimestamp(), ref dead);
        }

        PublishDeadLetters(dead);
    }

    internal void RemoveConsumer(QueueConsumer consumer)
    {
        List<GatewayMessage>? dead = null;
        bool deleteNow;
        lock (_sync)
        {
            if (!_consumers.Remove(consumer))
            {
                return;
            }

            var returned = new List<QueueEntry>();
            consumer.CompleteLocked(returned);
            foreach (var entry in returned)
            {
                RequeueLocked(entry);
            }

            _nextConsumer = 0;
            DispatchLocked(_time.GetTimestamp(), ref dead);
            if (_consumers.Count == 0)
            {
                SignalFlowLocked(force: true);
            }

            deleteNow = Options.AutoDelete && _hadConsumer && _consumers.Count == 0;
        }

        PublishDeadLetters(dead);
        if (deleteNow)
        {
            _router.DeleteQueue(Name);
        }
    }

    /// <summary>Marks the queue deleted and ends its consumers; returns the ready count.</summary>
    internal int MarkDeleted()
    {
        lock (_sync)
        {
            _deleted = true;
            var returned = new List<QueueEntry>();
            foreach (var consumer in _consumers)
            {
                consumer.CompleteLocked(returned);
            }

            _consumers.Clear();
            _log?.RemoveRange(Name, 0, long.MaxValue);
            return ClearReadyLocked();
        }
    }

    private int ClearReadyLocked()
    {
        var count = ReadyCountLocked;
        if (_log is not null)
        {
            RemoveWindowFromLogLocked();
            SkipDiskOnlyLocked();
        }

        _ready.Clear();
        _requeued.Clear();
        _readyBytes = 0;
        SignalFlowLocked(force: true);
        return count;
    }
}

/// <summary>A snapshot of one queue, for metrics and the API.</summary>
public readonly record struct QueueStatistics(
    int Ready,
    long ReadyBytes,
    int Unacknowledged,
    int Consumers,
    long Published,
    long Delivered,
    long Acknowledged,
    long DroppedMaxLength,
    long RejectedMaxLength,
    long Expired,
    long DeadLettered,
    TimeSpan OldestReadyAge);

internal enum EnqueueOutcome
{
    Accepted,
    AcceptedFlowBlocked,
    RejectedFull,
    RejectedLowDisk,
    RejectedStoreBusy,
    Gone,
}
