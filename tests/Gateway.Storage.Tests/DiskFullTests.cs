using System.Diagnostics;
using System.Text;
using Gateway.Routing;
using Gateway.TestKit;
using Microsoft.Extensions.Logging;

namespace Gateway.Storage.Tests;

/// <summary>
/// The store on a file system that really fills up: a 6 MB tmpfs mounted for the test (root
/// only; skipped, saying why, where mounting is not allowed).
/// </summary>
[Trait("Category", "Unit")]
public sealed class DiskFullTests : IDisposable
{
    private readonly SmallFileSystem _disk = new(megabytes: 6);
    private readonly InMemoryLoggerProvider _logs = new();
    private readonly ILoggerFactory _loggerFactory;

    public DiskFullTests() => _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs));

    public void Dispose()
    {
        _loggerFactory.Dispose();
        _disk.Dispose();
    }

    private LiteDbMessageStore Open(bool reserveSpace = true) => LiteDbMessageStore.Open(
        new StoreOptions { DataDirectory = Path.Combine(_disk.Path, "data"), MinFreeBytes = 0, CheckpointBytes = 512 * 1024, ReserveSpace = reserveSpace },
        _loggerFactory.CreateLogger("store"));

    private static GatewayMessage Numbered(int i) =>
        new(string.Empty, "q", Encoding.ASCII.GetBytes(i.ToString("D4096", System.Globalization.CultureInfo.InvariantCulture)));

    private static int Number(StoredMessage stored) => int.Parse(Encoding.ASCII.GetString(stored.Message.Body.Span), System.Globalization.CultureInfo.InvariantCulture);

    // Reserving: the full disk is found before LiteDB writes. Not reserving (a file system
    // without fallocate): LiteDB's own write fails, and the store reopens the database.
    [SmallFileSystemTheory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task After_the_disk_fills_the_store_takes_writes_again_once_space_returns_and_keeps_everything_acknowledged(bool reserveSpace)
    {
        var filler = Path.Combine(_disk.Path, "filler");
        await File.WriteAllBytesAsync(filler, new byte[1024 * 1024]);
        var acknowledged = new List<int>();
        var next = 0;
        await using (var store = Open(reserveSpace))
        {
            // Fill the disk: appends are acknowledged until ENOSPC fails one.
            Exception? failure = null;
            while (failure is null)
            {
                try
                {
                    await store.AppendAsync("q", Numbered(next), default);
                    acknowledged.Add(next);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    failure = ex;
                }

                next++;
            }

            Assert.NotNull(store.WriteFailure);

            // More writes on a full disk fail (or, where a failed one left room, succeed); the
            // store's writer carries on either way.
            for (var i = 0; i < 20; i++, next++)
            {
                try
                {
                    await store.AppendAsync("q", Numbered(next), default);
                    acknowledged.Add(next);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                }
            }

            File.Delete(filler);

            // Space is back: the store takes writes again by itself (it reopens at most once a second).
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (true)
            {
                try
                {
                    await store.AppendAsync("q", Numbered(next), default);
                    acknowledged.Add(next++);
                    break;
                }
                catch (Exception ex) when (ex is not OutOfMemoryException && DateTime.UtcNow < deadline)
                {
                    next++;
                    await Task.Delay(10); // polling, as WaitFor does
                }
            }

            Assert.Null(store.WriteFailure);
            for (var i = 0; i < 10; i++)
            {
                await store.AppendAsync("q", Numbered(next), default);
                acknowledged.Add(next++);
            }
        }

        Assert.Contains(_logs.Entries, e => e.EventId.Id == (reserveSpace ? 4013 : 4008)); // the disk is full, or the database was reopened
        Assert.Contains(_logs.Entries, e => e.EventId.Id == 4014); // and writes succeed again
        await using var reopened = Open();
        var stored = await reopened.ReadBatchAsync("q", 0, 100_000, default);
        Assert.Equal(acknowledged, stored.Select(Number));
    }
}

/// <summary>A size-limited tmpfs mounted for one test and unmounted after it.</summary>
internal sealed class SmallFileSystem : IDisposable
{
    private static readonly Lazy<string?> CannotMount = new(Probe);

    public SmallFileSystem(int megabytes)
    {
        Path = Directory.CreateTempSubdirectory("gateway-small-fs-").FullName;
        if (CannotMount.Value is null)
        {
            Mounted = Run("mount", "-t", "tmpfs", "-o", $"size={megabytes}m", "tmpfs", Path) is null;
        }
    }

    public string Path { get; }

    public bool Mounted { get; }

    /// <summary>Why a small file system cannot be mounted here; null when it can.</summary>
    public static string? WhyNot => CannotMount.Value;

    public void Dispose()
    {
        if (Mounted)
        {
            // Lazily: a LiteDB engine whose write failed is kept (never finalized) with its files open.
            Run("umount", "-l", Path);
        }

        Directory.Delete(Path, recursive: true);
    }

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "mounting a tmpfs needs Linux";
        }

        var path = Directory.CreateTempSubdirectory("gateway-mount-probe-").FullName;
        try
        {
            var failed = Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", path);
            if (failed is null)
            {
                Run("umount", path);
            }

            return failed is null ? null : "cannot mount a size-limited tmpfs here (root and a kernel that allows mount are needed): " + failed;
        }
        finally
        {
            Directory.Delete(path, recursive: true);
        }
    }

    // Null on success, otherwise what went wrong.
    private static string? Run(string command, params string[] arguments)
    {
        try
        {
            var start = new ProcessStartInfo(command) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }

            using var process = Process.Start(start)!;
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? null : $"{command} exited with {process.ExitCode}: {error.Trim()}";
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return $"{command}: {ex.Message}";
        }
    }
}

/// <summary>A test that needs <see cref="SmallFileSystem"/>: skipped, saying why, where it cannot be mounted.</summary>
internal sealed class SmallFileSystemTheoryAttribute : TheoryAttribute
{
    public SmallFileSystemTheoryAttribute()
    {
        if (SmallFileSystem.WhyNot is { } reason)
        {
            Skip = reason;
        }
    }
}
