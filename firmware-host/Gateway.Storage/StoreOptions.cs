namespace Gateway.Storage;

/// <summary>When an acknowledged write is on disk.</summary>
public enum StoreDurability
{
    /// <summary>Each group commit is checkpointed (flushed to the data file) before its writers are answered.</summary>
    Durable,

    /// <summary>Writers are answered after LiteDB's commit; the pages reach the disk later. A kill -9 can lose them.</summary>
    Fast,
}

/// <summary>How the message store is opened.</summary>
public sealed record class StoreOptions
{
    public required string DataDirectory { get; init; }

    public string FileName { get; init; } = "gateway.db";

    public StoreDurability Durability { get; init; } = StoreDurability.Durable;

    /// <summary>Most operations in one transaction.</summary>
    public int MaxGroupSize { get; init; } = 2048;

    /// <summary>Operations waiting for the writer before callers wait to submit more.</summary>
    public int QueueCapacity { get; init; } = 65_536;

    /// <summary>The clock the store's running time (message ages) is measured on.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
