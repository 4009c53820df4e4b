namespace Gateway.Routing;

// A durable queue is an ordered log in the store (offset = sequence number) with a window of
// its head in memory, so memory stays flat however long the backlog: once the window is full,
// new messages are only counted ("disk-only") and read back in order, a batch at a time, when
// the window has drained to half. Everything that leaves the queue for good is removed from
// the log; the store applies operations in submission order, so a removal follows its append.
public sealed partial class MessageQueue
{
    /// <summary>Messages kept in memory per durable queue.</summary>
    public const int WindowMessages = 4096;

    /// <summary>Body bytes kept in memory per durable queue.</summary>
    public const long WindowBytes = 8 * 1024 * 1024;

    private IMessageStore? _log;
    private long _diskOnlyFrom;   // lowest offset that may still be disk-only
    private long _diskOnlyCount;
    private long _diskOnlyBytes;
    private int _pendingDiskDrops; // drop-head with an empty window: discard that many from the next read
    private bool _reading;

    /// <summary>Messages of this queue that are on disk but not in memory.</summary>
    public long DiskOnlyCount
    {
        get
        {
            lock (_sync)
            {
                return _diskOnlyCount;
            }
        }
    }

    /// <summary>
    /// Completes once the removals of every message settled so far are on disk, so a crash
    /// cannot deliver those again. At once for a queue that is not durable.
    /// </summary>
    public ValueTask SyncRemovalsAsync(CancellationToken cancellationToken) =>
        Volatile.Read(ref _log) is { } log ? log.SyncRemovalsAsync(cancellationToken) : ValueTask.CompletedTask;

    private void OpenLog(IMessageStore log)
    {
        _log = log;
        var stored = log.OpenQueue(Name);
        _nextSeq = Math.Max(1, stored.LastOffset + 1);
        _diskOnlyFrom = stored.FirstOffset;
        _diskOnlyCount = stored.Count;
        _diskOnlyBytes = stored.Bytes;
        lock (_sync)
        {
            RefillLocked(); // what survived the last run comes back into the window (and its TTL applies)
        }
    }

    // False when the entry must stay on disk only: the window is full, or older messages are
    // still on disk (order is kept by reading them back first).
    private bool KeepInWindowLocked(QueueEntry entry)
    {
        if (_log is null || (_diskOnlyCount == 0 && WindowCountLocked < WindowMessages && _readyBytes < WindowBytes))
        {
            return true;
        }

        if (_diskOnlyCount == 0)
        {
            _diskOnlyFrom = entry.Seq;
        }

        _diskOnlyCount++;
        _diskOnlyBytes += entry.Message.Body.Length;
        return false;
    }

    private void RefillLocked()
    {
        if (_log is null || _reading || _deleted || _diskOnlyCount == 0 || WindowCountLocked > WindowMessages / 2)
        {
            return;
        }

        _reading = true;
        var from = _diskOnlyFrom;
        var to = _nextSeq;
        var max = WindowMessages - WindowCountLocked + _pendingDiskDrops;
        var log = _log;
        _ = Task.Run(() => ReadBackAsync(log, from, to, max));
    }

    private async Task ReadBackAsync(IMessageStore log, long from, long to, int max)
    {
        IReadOnlyList<StoredMessage> batch;
        try
        {
            batch = await log.ReadBatchAsync(Name, from, to, max, CancellationToken.None).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // The store reports its own failures; the next dispatch retries the read.
        catch (Exception)
#pragma warning restore CA1031
        {
            lock (_sync)
            {
                _reading = false;
            }

            return;
        }

        List<GatewayMessage>? dead = null;
        lock (_sync)
        {
            _reading = false;
            if (_deleted)
            {
                return;
            }

            var now = _time.GetTimestamp();
            var clock = log.Clock;
            foreach (var stored in batch)
            {
                if (stored.Offset < _diskOnlyFrom)
                {
                    continue; // purged while the read was on its way
                }

                _diskOnlyFrom = stored.Offset + 1;
                if (_pendingDiskDrops > 0)
                {
                    _pendingDiskDrops--;
                    log.Remove(Name, stored.Offset);
                    AddDeadLetterLocked(stored.Message, "maxlen", ref dead); // dropped when it was counted; dead-lettered now it is read
                    continue;
                }

                _diskOnlyCount--;
                _diskOnlyBytes -= stored.Message.Body.Length;
                var age = clock - stored.EnqueuedAt;
                var enqueuedAt = now - (age > TimeSpan.Zero ? (long)(age.TotalSeconds * _time.TimestampFrequency) : 0);
                var entry = new QueueEntry(stored.Offset, stored.Message, enqueuedAt, ExpiryFor(stored.Message, enqueuedAt), Redelivered: false);
                _expiring |= entry.ExpiresAt != QueueEntry.Never;
                _ready.Push(entry);
                _readyBytes += stored.Message.Body.Length;
            }

            if (batch.Count < max)
            {
                // Nothing more below 'to': whatever is disk-only now was appended after the read began.
                _diskOnlyFrom = Math.Max(_diskOnlyFrom, to);
                if (to == _nextSeq)
                {
                    _diskOnlyCount = 0;
                }
            }

            if (_diskOnlyCount <= 0)
            {
                _diskOnlyCount = 0;
                _diskOnlyBytes = 0;
                _pendingDiskDrops = 0;
            }

            DispatchLocked(now, ref dead);
        }

        PublishDeadLetters(dead);
    }

    // Drop-head when the head is not in memory yet: count it now, discard (or dead-letter) it when read.
    private void DropDiskHeadLocked()
    {
        var estimate = _diskOnlyBytes / _diskOnlyCount;
        _diskOnlyCount--;
        _diskOnlyBytes = _diskOnlyCount == 0 ? 0 : _diskOnlyBytes - estimate;
        _pendingDiskDrops++;
        RefillLocked();
    }

    private void RemoveWindowFromLogLocked()
    {
        for (var i = 0; i < _ready.Count; i++)
        {
            _log!.Remove(Name, _ready[i].Seq);
        }

        foreach (var (entry, _) in _requeued.UnorderedItems)
        {
            _log!.Remove(Name, entry.Seq);
        }
    }

    // Purge: every disk-only message has an offset from _diskOnlyFrom on.
    private void SkipDiskOnlyLocked()
    {
        if (_diskOnlyCount > 0 || _pendingDiskDrops > 0)
        {
            _log!.RemoveRange(Name, _diskOnlyFrom, _nextSeq - 1);
        }

        _diskOnlyFrom = _nextSeq;
        _diskOnlyCount = 0;
        _diskOnlyBytes = 0;
        _pendingDiskDrops = 0;
    }
}
