"""Provider channels: WeChat Official Account template messages, Mini Program subscribe messages,
Aliyun SMS, and the sandbox that speaks their wire formats.

Errors are classified here, once, by tables of provider codes: a send never raises, it answers
with a SendResult whose ErrorClass (transient, reauth, permanent) the pipeline acts on. The one
exception of the package is wechat.CallFailed, raised by WeChat management calls (templates)
and carrying the classified result, for the admin API to answer with.
"""
