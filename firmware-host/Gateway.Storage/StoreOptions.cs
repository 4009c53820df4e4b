namespace Gateway.Storage;

/// <summary>When an acknowledged write is on disk.</summary>
public enum StoreDurability
{
    /// <summary>Each group commit is fsynced (LiteDB's log file) before its writers are answered.</summary>
    Durable,

    /// <summary>
    /// Writers are answered after LiteDB's commit, which hands the pages to the kernel (LiteDB
    /// 5.0.21 writes its log inside Commit) but does not fsync them: the gateway being killed
    /// does not lose them, a power cut or kernel crash can.
    /// </summary>
    Fast,
}

/// <summary>How the message store is opened.</summary>
public sealed record class StoreOptions
{
    public required string DataDirectory { get; init; }

    public string FileName { get; init; } = "gateway.db";

    public StoreDurability Durability { get; init; } = StoreDurability.Durable;

    /// <summary>
    /// The log file size at which it is copied into the data file and emptied. Larger means fewer,
    /// longer checkpoints, and more of the log's pages held in LiteDB's cache meanwhile.
    /// </summary>
    public long CheckpointBytes { get; init; } = 4L * 1024 * 1024;

    /// <summary>Most operations in one transaction.</summary>
    public int MaxGroupSize { get; init; } = 2048;

    /// <summary>
    /// While appends keep coming, how long the writer lets them gather before the next group (see
    /// <see cref="LiteDbMessageStore"/>); zero starts every group at once.
    /// </summary>
    public TimeSpan GroupLinger { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Operations waiting for the writer before callers wait to submit more.</summary>
    public int QueueCapacity { get; init; } = 65_536;

    /// <summary>
    /// Free space the store leaves on the data directory's file system: below it, new messages are
    /// refused (a durable queue rejects them; the publisher is not acknowledged) until space returns.
    /// </summary>
    public long MinFreeBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Free bytes on the data directory's file system; tests replace it.</summary>
    public Func<string, long> FreeSpace { get; init; } = DriveFreeSpace;

    /// <summary>The clock the store's running time (message ages) is measured on.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Reserve disk blocks for each group before LiteDB writes it (see <see cref="LiteDbLogFile.Reserve"/>);
    /// without it (as on a file system without fallocate) a full disk fails LiteDB's own write
    /// and the store recovers by reopening the database.
    /// </summary>
    internal bool ReserveSpace { get; init; } = true;

    /// <summary>Called as a recovery of a damaged file passes each step; tests stop it there.</summary>
    internal Action<StoreRecovery.RecoveryStep>? RecoveryStepReached { get; init; }

    /// <summary>The free bytes the file system of <paramref name="directory"/> reports.</summary>
    public static long DriveFreeSpace(string directory) => new DriveInfo(directory).AvailableFreeSpace;
}

/// <summary>
/// What the host's store takes as the data directory's free bytes when this is registered as a
/// service instead of asking the file system (a test fills the disk this way).
/// </summary>
public delegate long FreeSpaceProbe(string directory);
