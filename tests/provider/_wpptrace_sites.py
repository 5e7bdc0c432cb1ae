# The trace and logging call sites of this package, for wpptrace (message identities and TMF
# entries where the sources are not available at run time, or changed after import).
# Written by `wpptrace tmf gen`; regenerate it with the TMF files, do not edit.

VERSION = 1
FILES = {
    'service_app.py': {
        'sha256': '79d454b0da8677a19b943d1d2aaefb15ecc1a31e0a52b677ba82da6dd1dd6a16',
        'trace': [
            (22, 4, 22, 73, 'info', 'TRACE_LEVEL_INFORMATION', 4, 'REQUEST', 'request %d served in %d ms', ('number', 'number % 7'), '<module>', False),
        ],
        'logging': [
        ],
    },
}
