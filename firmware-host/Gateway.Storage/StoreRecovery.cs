using System.Globalization;
using LiteDB;
using Microsoft.Extensions.Logging;

namespace Gateway.Storage;

/// <summary>
/// Opens the database file, and when it cannot be read, copies every message that can still be
/// read into a fresh file, moves the damaged one aside and says so loudly, so the service never
/// crash-loops on its own data. A recovery cut short (a power cut, a kill) is finished or redone
/// at the next start: the damaged file stays in place until its copy is complete and on disk.
/// </summary>
internal static class StoreRecovery
{
    /// <summary>
    /// Opens the file and runs <paramref name="scan"/> over it (it must read every message's key:
    /// that is the damage probe); on damage, recovers into a fresh file and scans that.
    /// <paramref name="step"/> is called as recovery passes each of its steps (tests stop it there).
    /// </summary>
    public static (LiteDatabase Database, LiteDbLogFile LogFile, T Scan) OpenOrRecover<T>(string path, long checkpointBytes, ILogger logger, Func<LiteDatabase, LiteDbLogFile, T> scan, Action<RecoveryStep>? step = null)
    {
        var recovering = StagingPath(path, "recovering");
        var recovered = StagingPath(path, "recovered");
        Delete(recovering); // a copy cut short: the damaged file is still in place and is copied again
        if (File.Exists(recovered))
        {
            // A complete copy that had not replaced the damaged file yet (or had just moved it aside).
            var movedTo = Install(path, recovered) ?? "(moved aside before the stop)";
            StoreLog.RecoveryFinished(logger, path, movedTo);
        }

        try
        {
            return OpenAndScan(path, checkpointBytes, logger, scan);
        }
        catch (Exception ex) when (IsDamage(ex))
        {
            var (saved, lost) = Salvage(path, recovering, checkpointBytes, step);
            step?.Invoke(RecoveryStep.Copied);
            Rename(recovering, recovered);
            LiteDbLogFile.SyncDirectory(Path.GetDirectoryName(path)!);
            step?.Invoke(RecoveryStep.Completed);
            var movedTo = Install(path, recovered)!;
            StoreLog.Recovered(logger, path, ex.Message, movedTo, saved, lost);
            return OpenAndScan(path, checkpointBytes, logger, scan);
        }
    }

    /// <summary>Where a recovery stands when <see cref="OpenOrRecover"/> reports it.</summary>
    internal enum RecoveryStep
    {
        /// <summary>Part of what can be read is in the fresh file.</summary>
        Copying,

        /// <summary>What could be read is in the fresh file, on disk, not yet marked complete.</summary>
        Copied,

        /// <summary>The fresh file is complete and on disk; the damaged file is still in place.</summary>
        Completed,
    }

    private static (LiteDatabase Database, LiteDbLogFile LogFile, T Scan) OpenAndScan<T>(string path, long checkpointBytes, ILogger logger, Func<LiteDatabase, LiteDbLogFile, T> scan)
    {
        var cut = LiteDbLogFile.CutTornTail(path);
        if (cut > 0)
        {
            StoreLog.TornLogCut(logger, path, cut);
        }

        var (database, logFile) = Open(path, checkpointBytes);
        try
        {
            return (database, logFile, scan(database, logFile));
        }
        catch
        {
            database.Dispose();
            logFile.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the file again after the store closed it because a write failed. LiteDB reads back
    /// every confirmed group from the log and skips what the failed one left unconfirmed; the
    /// log has no hole to cut (that is a power cut's doing), and the failed engine may still hold
    /// it open, so it is not opened exclusively to look.
    /// </summary>
    public static (LiteDatabase Database, LiteDbLogFile LogFile) Reopen(string path, long checkpointBytes) => Open(path, checkpointBytes);

    // gateway.db -> gateway.recovering.db (its log: gateway.recovering-log.db).
    private static string StagingPath(string path, string stage) =>
        Path.Combine(Path.GetDirectoryName(path)!, $"{Path.GetFileNameWithoutExtension(path)}.{stage}{Path.GetExtension(path)}");

    // Moves the damaged file aside (returns where to; null when it was moved before a stop) and
    // the complete copy into its place.
    private static string? Install(string path, string recovered)
    {
        string? movedTo = null;
        if (File.Exists(path))
        {
            var stamp = $"{path}.damaged-{DateTime.UtcNow.ToString("yyyyMMddTHHmmssZ", CultureInfo.InvariantCulture)}";
            movedTo = stamp;
            for (var n = 2; File.Exists(movedTo) || File.Exists(LiteDbLogFile.PathOf(movedTo)); n++)
            {
                movedTo = $"{stamp}-{n}"; // damaged twice within a second
            }

            Rename(path, movedTo);
        }

        Rename(recovered, path);
        LiteDbLogFile.SyncDirectory(Path.GetDirectoryName(path)!);
        return movedTo;
    }

    // A data file with its log, when it has one. The log goes first: a stop in between must not
    // leave it behind to be read as the log of the file that takes the name next.
    private static void Rename(string from, string to)
    {
        if (File.Exists(LiteDbLogFile.PathOf(from)))
        {
            File.Move(LiteDbLogFile.PathOf(from), LiteDbLogFile.PathOf(to), overwrite: true);
        }

        File.Move(from, to);
    }

    private static void Delete(string path)
    {
        File.Delete(path);
        File.Delete(LiteDbLogFile.PathOf(path));
    }

    // Every checkpoint goes through LiteDbLogFile: LiteDB's own runs inside Commit(), before the
    // store could fsync the transaction it wrote.
    private static (LiteDatabase Database, LiteDbLogFile LogFile) Open(string path, long checkpointBytes)
    {
        var database = new LiteDatabase(new ConnectionString { Filename = path, Connection = ConnectionType.Direct });
        try
        {
            database.CheckpointSize = 0;
            return (database, LiteDbLogFile.Open(path, checkpointBytes));
        }
        catch
        {
            database.Dispose();
            throw;
        }
    }

    // Copies what can be read into a fresh file, closed and on disk when this returns.
    private static (long Recovered, long Lost) Salvage(string damaged, string into, long checkpointBytes, Action<RecoveryStep>? step)
    {
        var (fresh, freshLog) = Open(into, checkpointBytes);
        try
        {
            return Salvage(damaged, fresh, freshLog, step);
        }
        finally
        {
            fresh.Dispose(); // empties and deletes the log: everything is in the data file
            freshLog.Dispose();
        }
    }

    // Messages first, then retained messages, definitions and the store clock (so stored ages carry on).
    private static (long Recovered, long Lost) Salvage(string damaged, LiteDatabase fresh, LiteDbLogFile freshLog, Action<RecoveryStep>? step)
    {
        long recovered = 0, lost = 0;
        try
        {
            using var source = new LiteDatabase(new ConnectionString { Filename = damaged, Connection = ConnectionType.Direct, ReadOnly = true });
            foreach (var name in (ReadOnlySpan<string>)[MessageDocument.Collection, SegmentDocuments.Headers, SegmentDocuments.Records, MessageDocument.RetainedCollection, LiteDbMessageStore.DefinitionsCollection, MessageDocument.MetaCollection])
            {
                var (copied, failed) = Copy(source, fresh, freshLog, name);
                if (name == MessageDocument.Collection)
                {
                    (recovered, lost) = (copied, failed);
                }

                step?.Invoke(RecoveryStep.Copying);
            }
        }
        catch (Exception ex) when (IsDamage(ex))
        {
            // Nothing readable.
        }

        var (inSegments, lostInSegments) = Reconcile(fresh);
        freshLog.Checkpoint(fresh);
        return (recovered + inSegments, lost + lostInSegments);
    }

    // Keeps the segments whose records were copied whole: a header without its records is
    // dropped, records without their header get a new one (nothing of them counted as removed).
    // Free slots are dropped with their stale records.
    private static (long Recovered, long Lost) Reconcile(LiteDatabase fresh)
    {
        long recovered = 0, lost = 0;
        var headers = fresh.GetCollection(SegmentDocuments.Headers);
        var records = fresh.GetCollection(SegmentDocuments.Records);
        var byId = new Dictionary<long, BsonDocument>();
        foreach (var header in headers.FindAll())
        {
            byId[header["_id"].AsInt64] = header;
        }

        // A batch per read transaction, as at open: one pass would hold every page it read in memory.
        long after = long.MinValue;
        List<BsonDocument> batch;
        do
        {
            batch = records.Find(Query.GT("_id", after), limit: 64).ToList();
            foreach (var document in batch)
            {
                after = document["_id"].AsInt64;
                var (kept, missing) = ReconcileSegment(headers, records, byId, document);
                recovered += kept;
                lost += missing;
            }
        }
        while (batch.Count > 0);

        foreach (var (id, header) in byId)
        {
            headers.Delete(id);
            lost += Segment.FromHeader(header).Live;
        }

        return (recovered, lost);
    }

    // One segment's records: what of them is kept (and counted recovered) or lost.
    private static (long Recovered, long Lost) ReconcileSegment(ILiteCollection<BsonDocument> headers, ILiteCollection<BsonDocument> records, Dictionary<long, BsonDocument> byId, BsonDocument document)
    {
        var id = document["_id"].AsInt64;
        if (byId.TryGetValue(id, out var free) && Segment.IsFree(free))
        {
            byId.Remove(id);
            headers.Delete(id);
            records.Delete(id); // stale: every record in it was removed
            return (0, 0);
        }

        var blob = document["d"].AsBinary;
        int count;
        long bodyBytes;
        try
        {
            count = SegmentLog.Parse(blob, out bodyBytes);
        }
        catch (Exception ex) when (IsDamage(ex))
        {
            records.Delete(id);
            return (0, 1);
        }

        if (byId.Remove(id, out var header) && Segment.FromHeader(header) is { } segment && segment.Count == count)
        {
            return (segment.Live, 0);
        }

        var first = document["f"].AsInt64;
        headers.Upsert(new BsonDocument { ["_id"] = id, ["q"] = document["q"], ["f"] = first, ["l"] = first + count - 1, ["n"] = bodyBytes, ["z"] = blob.Length });
        return (count, 0);
    }

    // A checkpoint whenever the log is full: LiteDB keeps every page of its log in memory until one.
    private static (long Copied, long Lost) Copy(LiteDatabase source, LiteDatabase target, LiteDbLogFile targetLog, string collection)
    {
        long copied = 0;
        try
        {
            var into = target.GetCollection(collection);
            using var documents = source.GetCollection(collection).FindAll().GetEnumerator();
            while (documents.MoveNext())
            {
                into.Upsert(documents.Current);
                if (++copied % 64 == 0 && targetLog.IsFull)
                {
                    targetLog.Checkpoint(target);
                }
            }

            return (copied, 0);
        }
        catch (Exception ex) when (IsDamage(ex))
        {
            return (copied, 1); // past the damage, LiteDB cannot follow the page chain
        }
    }

    internal static bool IsDamage(Exception ex) =>
        ex is LiteException or InvalidCastException or IndexOutOfRangeException or ArgumentException or InvalidOperationException or IOException or FormatException or OverflowException or NullReferenceException;
}
