namespace Gateway.Routing;

// A durable queue hands a message to its consumers only once the store has it on disk, and a
// message the store failed to write (its publisher is told so) leaves the queue: it is never
// delivered or forwarded, and the queue's counts never include it. The store completes a queue's
// appends in the order they were submitted, so the appends not yet settled are a FIFO and one
// continuation on the oldest (about one per group commit) is enough to move on.
public sealed partial class MessageQueue
{
    private readonly Queue<PendingAppend> _uncommitted = new();
    private bool _watchingCommit;
    private long _failedAppends;

    /// <summary>Messages the store failed to write; they were refused to their publishers and left the queue.</summary>
    public long FailedAppends
    {
        get
        {
            lock (_sync)
            {
                return _failedAppends;
            }
        }
    }

    private readonly record struct PendingAppend(long Seq, Task Committed, int BodyLength);

    private void TrackCommitLocked(long seq, Task committed, int bodyLength)
    {
        if (committed.IsCompletedSuccessfully && _uncommitted.Count == 0)
        {
            return;
        }

        _uncommitted.Enqueue(new PendingAppend(seq, committed, bodyLength));
        WatchCommitsLocked();
    }

    private void WatchCommitsLocked()
    {
        if (_watchingCommit || !_uncommitted.TryPeek(out var oldest))
        {
            return;
        }

        _watchingCommit = true;
        _ = oldest.Committed.ContinueWith(
            static (_, state) => ((MessageQueue)state!).OnCommitSettled(),
            this,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private void OnCommitSettled()
    {
        List<GatewayMessage>? dead = null;
        lock (_sync)
        {
            _watchingCommit = false;
            SettleCommitsLocked();
            WatchCommitsLocked();
            if (!_deleted)
            {
                DispatchLocked(_time.GetTimestamp(), ref dead);
            }
        }

        PublishDeadLetters(dead);
    }

    // True when the message at this offset is on disk (or was never waited for).
    private bool IsCommittedLocked(long seq)
    {
        if (_uncommitted.Count == 0)
        {
            return true;
        }

        SettleCommitsLocked();
        return !_uncommitted.TryPeek(out var oldest) || seq < oldest.Seq;
    }

    private void SettleCommitsLocked()
    {
        while (_uncommitted.TryPeek(out var oldest) && oldest.Committed.IsCompleted)
        {
            _uncommitted.Dequeue();
            if (!oldest.Committed.IsCompletedSuccessfully)
            {
                ForgetFailedAppendLocked(oldest);
            }
        }
    }

    // The store refused it: out of the window, or out of the disk-only count.
    private void ForgetFailedAppendLocked(PendingAppend failed)
    {
        _failedAppends++;
        for (var i = 0; i < _ready.Count; i++)
        {
            if (_ready[i].Seq == failed.Seq)
            {
                _ready.RemoveAt(i);
                _readyBytes -= failed.BodyLength;
                SignalFlowLocked(force: false);
                return;
            }
        }

        if (_diskOnlyCount > 0 && failed.Seq >= _diskOnlyFrom)
        {
            _diskOnlyCount--;
            _diskOnlyBytes = _diskOnlyCount == 0 ? 0 : _diskOnlyBytes - failed.BodyLength;
        }
    }
}
