"""Tools around the DeSRA pipeline that are not part of it: converting released models into BasicSR checkpoints.

:mod:`desra_basicsr.tools.ncnn` turns an ncnn RRDBNet (Real-ESRGAN's ``realesrgan-x4plus``) into a BasicSR
``RRDBNet`` checkpoint (``desra convert-ncnn``).
"""
