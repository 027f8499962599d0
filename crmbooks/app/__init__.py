"""The operator's surfaces on top of the core: the `crmbooks` command line (cli) and the
event receiver (receiver).

The direction is app → deployments → flows → tasks → core (crmbooks): nothing outside this
package imports it.
"""
