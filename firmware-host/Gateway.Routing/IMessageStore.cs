namespace Gateway.Routing;

/// <summary>
/// The seam for durable queues (ARCHITECTURE.md, store-and-forward): an ordered log per queue
/// plus a checkpoint. Gateway.Storage implements it over LiteDB; until a store is registered,
/// declaring a durable queue fails with 540 not-implemented rather than pretending.
/// </summary>
public interface IMessageStore
{
    /// <summary>Appends a message to a queue's log once it is on disk; returns its offset.</summary>
    ValueTask<long> AppendAsync(string queue, GatewayMessage message, CancellationToken cancellationToken);

    /// <summary>Reads up to <paramref name="max"/> messages starting at <paramref name="fromOffset"/>.</summary>
    ValueTask<IReadOnlyList<StoredMessage>> ReadBatchAsync(string queue, long fromOffset, int max, CancellationToken cancellationToken);

    /// <summary>Acknowledges everything up to and including <paramref name="offset"/>.</summary>
    ValueTask CommitAsync(string queue, long offset, CancellationToken cancellationToken);

    /// <summary>Removes expired messages; returns how many.</summary>
    ValueTask<int> PurgeExpiredAsync(CancellationToken cancellationToken);
}

/// <summary>A message read back from the store with its position in the queue's log.</summary>
public readonly record struct StoredMessage(long Offset, GatewayMessage Message);
