using System.Globalization;

namespace Gateway.Storage;

/// <summary>
/// Keeps a store file to one process. LiteDB's own file locks are shared ones on Linux, so a
/// second gateway started on the same data directory (by hand, next to the service) would open
/// the file too and both would write it. An exclusive lock on "&lt;file&gt;.lock" (flock, released by
/// the kernel however the holder ends) refuses the second one.
/// </summary>
internal sealed class StoreLock : IDisposable
{
    private readonly FileStream _file;

    private StoreLock(FileStream file) => _file = file;

    public static StoreLock Acquire(string storePath)
    {
        var path = storePath + ".lock";
        try
        {
            return new StoreLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 0));
        }
        catch (IOException ex) when (File.Exists(path))
        {
            throw new StoreInUseException(storePath, Holder(path), ex);
        }
    }

    public void Dispose() => _file.Dispose();

    // The lock file cannot be read while it is held (.NET takes a shared flock to read it), so
    // find the holder the way fuser does: the process with the file open. Only on refusal.
    private static int? Holder(string path)
    {
        try
        {
            foreach (var process in new DirectoryInfo("/proc").EnumerateDirectories())
            {
                if (!int.TryParse(process.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
                {
                    continue;
                }

                try
                {
                    foreach (var descriptor in new DirectoryInfo(Path.Combine(process.FullName, "fd")).EnumerateFileSystemInfos())
                    {
                        if (descriptor.LinkTarget == path)
                        {
                            return pid;
                        }
                    }
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Gone, or not ours to look at.
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // No /proc.
        }

        return null;
    }
}

/// <summary>The store file is held by another process (another gateway on the same data directory).</summary>
public sealed class StoreInUseException(string path, int? holderPid, Exception inner)
    : IOException($"{path} is in use by another gateway process{(holderPid is null ? string.Empty : $" (pid {holderPid})")}", inner)
{
    public string Path { get; } = path;
}
