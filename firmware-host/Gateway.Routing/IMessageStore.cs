namespace Gateway.Routing;

/// <summary>
/// The seam for durable queues (ARCHITECTURE.md, store-and-forward): an ordered log per queue.
/// Gateway.Storage implements it over LiteDB. The queue assigns offsets; the store applies
/// operations in the order they were submitted, so a removal always follows its append.
/// Until a store is registered, declaring a durable queue fails with 540 not-implemented.
/// </summary>
public interface IMessageStore
{
    /// <summary>
    /// How long the store has been open, summed over every run. Message ages are measured on
    /// this clock, so a wall-clock jump (a board without RTC booting at 1970, then NTP) neither
    /// expires stored messages early nor keeps them forever. Time the gateway is off does not count.
    /// </summary>
    TimeSpan Clock { get; }

    /// <summary>True while free disk is under the store's reserve: appends are refused.</summary>
    bool LowOnDisk { get; }

    /// <summary>What a queue's log held when the store was opened (what survived the last run); empty after the first call.</summary>
    QueueLogInfo OpenQueue(string queue);

    /// <summary>
    /// Submits an append without waiting; <paramref name="committed"/> completes once the message
    /// is on disk. Returns false when the disk is under the reserve (<see cref="LowOnDisk"/>) or
    /// the writer's queue is full (the caller refuses the message).
    /// </summary>
    bool TryAppend(string queue, long offset, GatewayMessage message, TimeSpan enqueuedAt, out Task committed);

    /// <summary>Reads up to <paramref name="max"/> messages with offsets in [<paramref name="fromOffset"/>, <paramref name="toOffset"/>).</summary>
    ValueTask<IReadOnlyList<StoredMessage>> ReadBatchAsync(string queue, long fromOffset, long toOffset, int max, CancellationToken cancellationToken);

    /// <summary>Removes one message (acknowledged, dropped or expired). Never waits; a lost removal only means a redelivery.</summary>
    void Remove(string queue, long offset);

    /// <summary>Removes the messages with offsets from <paramref name="first"/> to <paramref name="last"/> inclusive (purge, delete).</summary>
    void RemoveRange(string queue, long first, long last);

    /// <summary>
    /// Completes once every removal submitted before this call is on disk as durably as an
    /// append (removals alone are written lazily, so a crash may bring them back as redeliveries).
    /// </summary>
    ValueTask SyncRemovalsAsync(CancellationToken cancellationToken);
}

/// <summary>A message read back from the store with its position in the queue's log.</summary>
/// <param name="Offset">Its offset in the queue's log.</param>
/// <param name="Message">The message.</param>
/// <param name="EnqueuedAt">When it was stored, on the store's <see cref="IMessageStore.Clock"/>.</param>
public readonly record struct StoredMessage(long Offset, GatewayMessage Message, TimeSpan EnqueuedAt);

/// <summary>What a queue's log holds.</summary>
public readonly record struct QueueLogInfo(long Count, long Bytes, long FirstOffset, long LastOffset);
