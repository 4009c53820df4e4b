using Microsoft.Extensions.Options;

namespace Gateway.Host;

/// <summary>Creates the data directory at start and checks that it is writable.</summary>
internal sealed class DataDirectoryService(IOptions<StorageOptions> options) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var directory = Path.GetFullPath(options.Value.DataDirectory);
        try
        {
            Directory.CreateDirectory(directory);
            var probe = Path.Combine(directory, ".write-test");
            File.WriteAllText(probe, string.Empty);
            File.Delete(probe);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"Storage:DataDirectory '{directory}' is not a writable directory: {ex.Message}", ex);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
