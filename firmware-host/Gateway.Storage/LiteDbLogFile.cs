using System.Runtime.InteropServices;
using LiteDB;

namespace Gateway.Storage;

/// <summary>
/// LiteDB's write-ahead log (<c>gateway-log.db</c> beside <c>gateway.db</c>), held open so the
/// store can fsync it. LiteDB 5.0.21's <c>Commit()</c> writes a transaction's pages at the end of
/// this file, the last one marked "confirmed", but never fsyncs it; at open LiteDB reads every
/// confirmed transaction back from it. So a group is on disk once its commit returned and this
/// file was fsynced. A checkpoint copies the log into the data file, fsyncs that and only then
/// empties the log; every checkpoint goes through <see cref="Checkpoint"/>, which runs it only on
/// a log that is already on disk, so a power cut in the middle of one is repaired at the next
/// open by copying the same pages again. (LiteDB's own checkpoint, which runs inside Commit()
/// before anyone could fsync the transaction it just wrote, is turned off.)
/// </summary>
internal sealed partial class LiteDbLogFile : IDisposable
{
    private const int PageSize = 8192; // LiteDB's page
    private const int ConfirmedFlag = 18; // offset of a page header's "transaction confirmed" byte
    private const int BlankHeader = 16; // LiteDB skips a log page whose first 16 bytes are zero

    private const int KeepSize = 1; // FALLOC_FL_KEEP_SIZE
    private const int NoSpace = 28; // ENOSPC
    private const int NotSupported = 95; // EOPNOTSUPP

    private readonly FileStream _stream;
    private readonly FileStream? _data; // the data file, held to reserve room for checkpoints
    private readonly long _checkpointBytes;
    private long _syncedLength;
    private bool _cannotReserve; // the file system has no fallocate: writes find out for themselves

    private LiteDbLogFile(FileStream stream, FileStream? data, long checkpointBytes)
    {
        _stream = stream;
        _data = data;
        _checkpointBytes = checkpointBytes;
    }

    /// <summary>The log holds <see cref="StoreOptions.CheckpointBytes"/> or more (an fstat).</summary>
    public bool IsFull => _stream.Length >= _checkpointBytes;

    /// <summary>How much of the log the last <see cref="Sync"/> put on disk (what a power cut leaves).</summary>
    public long SyncedLength => Volatile.Read(ref _syncedLength);

    public static string PathOf(string dataFile) =>
        Path.Combine(Path.GetDirectoryName(dataFile)!, Path.GetFileNameWithoutExtension(dataFile) + "-log" + Path.GetExtension(dataFile));

    /// <summary>Opens (creating it when missing) the log of <paramref name="dataFile"/>, which LiteDB has just opened.</summary>
    public static LiteDbLogFile Open(string dataFile, long checkpointBytes)
    {
        var log = new FileStream(PathOf(dataFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
        try
        {
            var data = OperatingSystem.IsLinux() ? new FileStream(dataFile, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0) : null;
            return new LiteDbLogFile(log, data, checkpointBytes);
        }
        catch
        {
            log.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Makes sure the next <paramref name="bytes"/> LiteDB appends to the log have disk blocks
    /// (fallocate beyond its end, keeping its size), or throws <see cref="StoreFullException"/>
    /// before LiteDB writes anything. LiteDB 5.0.21 does not survive a write that fails for
    /// space: the transaction it cannot roll back leaves pages it can neither write nor discard,
    /// so a full disk must be found out here, while nothing is half written.
    /// </summary>
    public void Reserve(long bytes)
    {
        if (_cannotReserve || !OperatingSystem.IsLinux())
        {
            return;
        }

        Allocate(_stream, _stream.Length, bytes);
    }

    /// <summary>
    /// Reserves room in the data file for a checkpoint (at most the log's length); false when the
    /// disk has none: the checkpoint waits (the log keeps every group meanwhile).
    /// </summary>
    public bool TryReserveCheckpoint()
    {
        if (_cannotReserve || _data is null)
        {
            return true;
        }

        try
        {
            Allocate(_data, _data.Length, _stream.Length + PageSize);
            return true;
        }
        catch (StoreFullException)
        {
            return false;
        }
    }

    private void Allocate(FileStream file, long offset, long length)
    {
        if (FAllocate(file.SafeFileHandle, KeepSize, offset, length) == 0)
        {
            return;
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno == NoSpace)
        {
            throw new StoreFullException($"No space left on device for the next {length} bytes of {file.Name}");
        }

        if (errno == NotSupported)
        {
            _cannotReserve = true;
            return;
        }

        throw new IOException($"Cannot reserve {length} bytes of {file.Name} (errno {errno})");
    }

    /// <summary>
    /// Makes the directory entries of the data file and the log durable: LiteDB deletes an empty
    /// log when it closes, so each start may create it again.
    /// </summary>
    public void SyncDirectory() => SyncDirectory(Path.GetDirectoryName(_stream.Name)!);

    /// <summary>Makes the entries of <paramref name="directory"/> (files created, renamed, deleted) durable.</summary>
    public static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = OpenDirectory(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"Cannot open {directory} to sync it (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (FSync(fd) != 0)
            {
                throw new IOException($"Cannot sync {directory} (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>Everything LiteDB has written to the log is on disk when this returns.</summary>
    public void Sync()
    {
        var length = _stream.Length;
        _stream.Flush(flushToDisk: true);
        Volatile.Write(ref _syncedLength, length);
    }

    /// <summary>
    /// Copies the log into the data file. The log is fsynced before (so a power cut in the middle
    /// leaves the whole log to copy again) and after (so the emptied log is what is on disk
    /// before anything new is written to it).
    /// </summary>
    public void Checkpoint(LiteDatabase database)
    {
        Sync();
        database.Checkpoint();
        Sync();
    }

    public void Dispose()
    {
        _stream.Dispose();
        _data?.Dispose();
    }

    /// <summary>
    /// Before LiteDB opens the file: a power cut while a group was being written can leave that
    /// group's last, confirming page on disk but an earlier one not (the kernel writes a file's
    /// pages back in no set order until the fsync). LiteDB would skip the missing page (it reads
    /// as zeros) and apply the rest as a whole transaction. Every group before it was fsynced
    /// whole before its writers were answered, so the log is cut after the last confirmed page
    /// ahead of the first such hole: only a group nobody was answered for is dropped. What is
    /// left is fsynced, so nothing that may not be on disk is ever checkpointed. Returns the
    /// bytes cut.
    /// </summary>
    public static long CutTornTail(string dataFile)
    {
        var path = PathOf(dataFile);
        if (!File.Exists(path))
        {
            return 0;
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
        var length = stream.Length - (stream.Length % PageSize);
        Span<byte> header = stackalloc byte[ConfirmedFlag + 1];
        long keep = 0; // the end of the last confirmed page so far
        for (long at = 0; at < length; at += PageSize)
        {
            if (RandomAccess.Read(stream.SafeFileHandle, header, at) < header.Length)
            {
                break;
            }

            if (!header[..BlankHeader].ContainsAnyExcept((byte)0))
            {
                stream.SetLength(keep);
                stream.Flush(flushToDisk: true);
                return length - keep;
            }

            if (header[ConfirmedFlag] != 0)
            {
                keep = at + PageSize;
            }
        }

        stream.Flush(flushToDisk: true); // groups not fsynced before a kill: on disk before any checkpoint copies them
        return 0;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenDirectory(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int FAllocate(Microsoft.Win32.SafeHandles.SafeFileHandle fd, int mode, long offset, long length);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}

/// <summary>The disk has no room for the next write; nothing of it was written.</summary>
public sealed class StoreFullException(string message) : IOException(message);
