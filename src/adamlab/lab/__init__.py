"""The lab: experiments, report and command line, layered on the public adamlab API.

Nothing in the library imports from here.
"""
