using Gateway.Routing;

namespace Gateway.Uplinks;

/// <summary>
/// The messages the cloud confirmed whose removal from the uplink's queue may not be on disk
/// yet: the store writes removals lazily, so a crash would send them again. With the publishes
/// still unconfirmed they are all a crash can duplicate, and the publish window keeps the sum
/// within <see cref="UplinkOptions.MaxInFlight"/> (ARCHITECTURE.md: duplicates only from the
/// in-flight window). Before they fill it the queue is asked to write them: one store group,
/// checkpointed like an append, shared with whatever else the store is writing.
/// </summary>
internal sealed class UnsyncedRemovals
{
    private readonly MessageQueue _queue;
    private readonly Action _synced;
    private int _count;
    private int _syncing; // 1 while a sync runs
    private int _syncAt;

    /// <param name="queue">The uplink's queue.</param>
    /// <param name="limit">Most unconfirmed plus unsynced messages (MaxInFlight).</param>
    /// <param name="synced">Called after each sync, to let a window held back by it go on.</param>
    public UnsyncedRemovals(MessageQueue queue, int limit, Action synced)
    {
        _queue = queue;
        _synced = synced;
        Limit = limit;
        _syncAt = Math.Max(1, limit / 2);
    }

    public int Limit { get; }

    public int Count => Volatile.Read(ref _count);

    /// <summary>
    /// Counts messages just settled (their removals already submitted to the store). A sync
    /// starts once they take half the room the <paramref name="unconfirmed"/> publishes leave,
    /// so the sends rarely wait for one, and a drain syncs every hundred or so messages.
    /// </summary>
    public void Add(int settled, int unconfirmed)
    {
        var syncAt = Math.Max(1, (Limit - unconfirmed) / 2);
        Volatile.Write(ref _syncAt, syncAt);
        if (Interlocked.Add(ref _count, settled) >= syncAt)
        {
            Sync();
        }
    }

    /// <summary>Starts a sync of what is counted now, unless one is running or there is nothing.</summary>
    public void Sync()
    {
        if (Volatile.Read(ref _count) == 0 || Interlocked.CompareExchange(ref _syncing, 1, 0) != 0)
        {
            return;
        }

        // Everything counted was settled before this read, so its removal is submitted ahead
        // of the sync and the store writes it no later than the sync's group.
        _ = SyncAsync(Volatile.Read(ref _count));
    }

    private async Task SyncAsync(int covered)
    {
        try
        {
            await _queue.SyncRemovalsAsync(CancellationToken.None).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // The store logged it. The removals stay lazy; forwarding must not wait on them.
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        Interlocked.Add(ref _count, -covered);
        Volatile.Write(ref _syncing, 0);
        if (Count >= Volatile.Read(ref _syncAt))
        {
            Sync();
        }

        _synced();
    }
}
