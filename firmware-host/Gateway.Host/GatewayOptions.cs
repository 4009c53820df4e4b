using System.ComponentModel.DataAnnotations;
using Gateway.Protocols;
using Gateway.Routing;
using Microsoft.Extensions.Options;

namespace Gateway.Host;

/// <summary>The <c>Http</c> section: dashboard, API, metrics, health and WebSocket endpoints.</summary>
public sealed class HttpOptions
{
    public const string Section = "Http";

    [Range(0, 65535, ErrorMessage = "Http:Port must be between 0 and 65535")]
    public int Port { get; set; } = 15672;

    [Required(ErrorMessage = "Http:BindAddress is required")]
    public string BindAddress { get; set; } = "0.0.0.0";
}

/// <summary>The <c>Memory</c> section.</summary>
public sealed class MemoryOptions
{
    public const string Section = "Memory";

    /// <summary>
    /// Message bytes the gateway may hold in memory for clients that are not taking them
    /// (offline persistent sessions, subscribers left behind); 0 sizes it to a quarter of the
    /// heap limit (64 MB under the shipped build's 256 MB cap).
    /// </summary>
    [Range(0, 1_048_576, ErrorMessage = "Memory:BudgetMegabytes must be between 0 (a quarter of the heap limit) and 1048576")]
    public int BudgetMegabytes { get; set; }

    public long BudgetBytes => BudgetMegabytes == 0 ? MemoryBudget.DefaultLimit : BudgetMegabytes * 1024L * 1024;
}

[OptionsValidator]
internal sealed partial class MemoryOptionsValidator : IValidateOptions<MemoryOptions>
{
}

[OptionsValidator]
internal sealed partial class HttpOptionsValidator : IValidateOptions<HttpOptions>
{
}

/// <summary>Listener addresses must parse; the message names the key.</summary>
internal sealed class BindAddressValidator : IValidateOptions<HttpOptions>
{
    public ValidateOptionsResult Validate(string? name, HttpOptions options) => ProtocolOptions.CheckAddress("Http:BindAddress", options.BindAddress);
}
