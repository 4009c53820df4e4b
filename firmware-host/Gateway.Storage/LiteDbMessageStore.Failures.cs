namespace Gateway.Storage;

// What the writer does when a write fails. An operation that cannot be written (a document
// LiteDB refuses) fails alone: its group is rolled back and each of its operations tried in a
// transaction of its own. A failing disk (ENOSPC, EIO) leaves LiteDB's engine in a state it does
// not recover from on its own (pages it cannot enqueue again, free pages of the wrong type), so
// the database is closed and opened again, which reads back from the log every group that was
// committed and nothing of the failed one; until the disk takes writes again every group fails,
// and the writer tries to reopen at most once per ReopenInterval. Nothing thrown on the writer
// thread ends it: at worst the operations in hand fail.
public sealed partial class LiteDbMessageStore
{
    private static readonly TimeSpan ReopenInterval = TimeSpan.FromSeconds(1);

    private Exception? _unavailable; // writer thread: the database is closed, the last reopen failed with this
    private long _reopenedAt;
    private long _writeFailures;
    private long _reopens;

    /// <summary>
    /// Why the last group that wrote failed, while no write has succeeded since (null when writes
    /// succeed): the store's health.
    /// </summary>
    public string? WriteFailure { get; private set; }

    /// <summary>Operations that failed to be written (each answered with the failure).</summary>
    public long WriteFailures => Interlocked.Read(ref _writeFailures);

    /// <summary>Times the database was closed and opened again after a failed write.</summary>
    public long Reopens => Interlocked.Read(ref _reopens);

    // Room on disk for everything the group may write, before LiteDB is asked to write any of it.
    private void ReserveFor(List<StoreOperation> group)
    {
        long bytes = 0;
        foreach (var operation in group)
        {
            bytes += operation.WriteBytes;
        }

        if (!_options.ReserveSpace || (bytes == 0 && !_log.HasChanges))
        {
            return; // reads only
        }

        // Twice over (a segment is rewritten whole, and index pages change too), plus the
        // segment headers of removals written with it and a margin for the header and the clock.
        _logFile.Reserve((2 * bytes) + (_log.DirtyCount * 2L * 8192) + ReserveMargin);
    }

    private const long ReserveMargin = 256 * 1024;

    // The disk has no room for the group: every operation in it fails, nothing was written.
    private void DiskFull(List<StoreOperation> group, Exception failure)
    {
        if (WriteFailure is null)
        {
            StoreLog.DiskFull(_logger, Path, failure.Message);
        }

        WriteFailure = failure.Message;
        foreach (var operation in group)
        {
            Failed(operation, failure);
        }
    }

    // Each operation of a failed group in a transaction of its own. Once one fails for the disk,
    // the rest fail with it without trying: the disk will not take theirs either.
    private void RunEach(List<StoreOperation> group)
    {
        var single = new List<StoreOperation>(1);
        Exception? diskFailure = null;
        foreach (var operation in group)
        {
            if (diskFailure is not null || _unavailable is not null)
            {
                Failed(operation, diskFailure ?? _unavailable!);
                continue;
            }

            single.Clear();
            single.Add(operation);
            if (TryWrite(single, out var deferred, out var failure))
            {
                Completed(single, deferred);
                continue;
            }

            if (failure is StoreFullException)
            {
                DiskFull(single, failure);
                diskFailure = failure;
                continue;
            }

            StoreLog.OperationFailed(_logger, operation.GetType().Name, failure);
            Recover(failure);
            Failed(operation, failure);
            if (IsDiskFailure(failure))
            {
                diskFailure = failure;
            }
        }
    }

    private void Failed(StoreOperation operation, Exception failure)
    {
        if (!operation.Detached)
        {
            Interlocked.Increment(ref _writeFailures);
        }

        operation.Fail(failure);
    }

    // Undoes a failed transaction: what the segment log holds in memory is read again from the
    // database, or, when the disk failed or that read fails too, the database is reopened.
    private void Recover(Exception failure)
    {
        if (IsDiskFailure(failure))
        {
            WriteFailure = failure.Message;
        }

        TryRollback();
        ForgetDeferredRemovals(); // Reload reads them back as they are on disk
        if (!IsDiskFailure(failure))
        {
            try
            {
                _log.Reload();
                return;
            }
#pragma warning disable CA1031 // Anything LiteDB throws here means its engine cannot be trusted: reopen.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                failure = ex;
            }
        }

        Reopen(failure);
    }

    // True when the database may be written: it is open, or it could be reopened now. Otherwise
    // the group fails at once with why the store is unavailable.
    private bool EnsureOpen(List<StoreOperation> group)
    {
        if (_unavailable is not null && _time.GetElapsedTime(_reopenedAt) >= ReopenInterval)
        {
            Reopen(_unavailable);
        }

        if (_unavailable is null)
        {
            return true;
        }

        foreach (var operation in group)
        {
            Failed(operation, _unavailable);
        }

        return false;
    }

    private void Reopen(Exception cause)
    {
        _reopenedAt = _time.GetTimestamp();
        if (_unavailable is null)
        {
            CloseDatabase(failed: true);
        }

        try
        {
            var (database, logFile) = StoreRecovery.Reopen(Path, _options.CheckpointBytes);
            try
            {
                _log.Load(database);
            }
            catch
            {
                database.Dispose();
                logFile.Dispose();
                throw;
            }

            _database = database;
            _logFile = logFile;
            _unavailable = null;
            Interlocked.Increment(ref _reopens);
            StoreLog.Reopened(_logger, Path, cause.Message, _log.MessageCount);
        }
#pragma warning disable CA1031 // Tried again on the next group, at most once per ReopenInterval.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            if (_unavailable is null)
            {
                StoreLog.ReopenFailed(_logger, Path, ex);
            }

            _unavailable = ex;
            WriteFailure = ex.Message;
        }
    }

    // Closes the database and the log file; a failed engine may throw while closing (it writes
    // what it holds).
    private void CloseDatabase(bool failed)
    {
        if (_database is null)
        {
            return; // closed after a failed write and not reopened since
        }

        try
        {
            _database.Dispose();
        }
#pragma warning disable CA1031 // Closing a failed database: nothing more can be done with it.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            StoreLog.CloseFailed(_logger, Path, ex);
        }

        _logFile.Dispose();
        if (!failed)
        {
            return;
        }

        // LiteDB 5.0.21's transactions have finalizers that discard their pages, and a failed
        // engine's throw there (on the finalizer thread, which ends the process): a closed failed
        // engine is kept reachable so they never run. A few per disk failure, for good.
        lock (FailedDatabases)
        {
            FailedDatabases.Add(_database);
        }

        _database = null!;
        _log.Detach();
    }

    private static readonly List<LiteDB.LiteDatabase> FailedDatabases = [];

    // The last resort: RunGroup handles what LiteDB throws; anything else still fails only the
    // operations in hand, and the database is reopened before the next group.
    private void RunGroupSafely(List<StoreOperation> group)
    {
        try
        {
            RunGroup(group);
        }
#pragma warning disable CA1031 // The writer thread must never end while the store is open.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            StoreLog.GroupFailed(_logger, group.Count, ex);
            foreach (var operation in group)
            {
                Failed(operation, ex);
            }

            if (_unavailable is null)
            {
                TryRollback();
                Reopen(ex);
            }
        }
    }

    private static bool IsDiskFailure(Exception exception)
    {
        for (Exception? ex = exception; ex is not null; ex = ex.InnerException)
        {
            if (ex is IOException or UnauthorizedAccessException)
            {
                return true;
            }
        }

        return false;
    }
}
